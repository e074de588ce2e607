package hostgen

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// netstatFlat turns parsed sections into "Proto_Name": value.
func netstatFlat(t *testing.T, p *netstatParsed) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	var names [][]byte
	for i := range p.Sections {
		sec := &p.Sections[i]
		names = sec.Names(names)
		if len(names) != sec.End-sec.First {
			t.Fatalf("section %q: %d names for %d values", sec.Proto, len(names), sec.End-sec.First)
		}
		for j := sec.First; j < sec.End; j++ {
			if !p.Fields[j].Bad {
				out[string(sec.Proto)+"_"+string(names[j-sec.First])] = p.Fields[j].Value
			}
		}
	}
	return out
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]float64
		wantErr string
	}{
		{
			name: "two pairs",
			in:   "Tcp: RtoMin MaxConn InSegs\nTcp: 200 -1 18446744073709551615\nUdp: InErrors\nUdp: 7\n",
			want: map[string]float64{"Tcp_RtoMin": 200, "Tcp_MaxConn": -1, "Tcp_InSegs": 18446744073709551615, "Udp_InErrors": 7},
		},
		{
			name:    "column counts differ",
			in:      "Tcp: A B\nTcp: 1\nUdp: C\nUdp: 2\n",
			want:    map[string]float64{"Udp_C": 2},
			wantErr: "snmp line 2,1 values for 2 names",
		},
		{
			name:    "header without values",
			in:      "Udp: C\nUdp: 2\nTcp: A B\n",
			want:    map[string]float64{"Udp_C": 2},
			wantErr: "line 3,no value line",
		},
		{
			name:    "value not a number",
			in:      "Tcp: A B\nTcp: 1 x\n",
			want:    map[string]float64{"Tcp_A": 1},
			wantErr: "line 2,column 2",
		},
		{
			name:    "double space makes an empty value",
			in:      "Tcp: A B\nTcp: 1  2\n",
			want:    map[string]float64{},
			wantErr: "line 2,3 values for 2 names",
		},
		{
			name:    "line starting with a space",
			in:      " Tcp: A\nTcp: 1\n",
			want:    map[string]float64{},
			wantErr: "line 1,no protocol name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p netstatParsed
			err := parseNetstat([]byte(tt.in), "/proc/net/snmp", &p)
			wantErrAt(t, err, tt.wantErr)
			got := netstatFlat(t, &p)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestParseSNMP6(t *testing.T) {
	var p netstatParsed
	in := "Ip6InReceives                   \t7\nIcmp6InMsgs 3 extra\nUdpLite6InErrors 1\nnosix 4\nIp6Lonely\n\nIp6OutOctets x\n"
	err := parseSNMP6([]byte(in), "/proc/net/snmp6", &p)
	wantErrAt(t, err, "snmp6 line 7,Ip6OutOctets")
	got := netstatFlat(t, &p)
	want := map[string]float64{"Ip6_InReceives": 7, "Icmp6_InMsgs": 3, "UdpLite6_InErrors": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestNetstatSeries(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    map[string]float64
		wantErr string
	}{
		{
			name: "filter, no snmp6",
			files: map[string]string{
				"net/netstat": "TcpExt: ListenDrops TW\nTcpExt: 3 4\n",
				"net/snmp":    "Tcp: InSegs RtoMin\nTcp: 5 200\n",
			},
			want: map[string]float64{"node_netstat_TcpExt_ListenDrops": 3, "node_netstat_Tcp_InSegs": 5},
		},
		{
			name: "later protocol replaces earlier, last name wins",
			files: map[string]string{
				"net/netstat": "Udp: InErrors NoPorts\nUdp: 1 2\nTcp: InSegs InSegs\nTcp: 1 2\n",
				"net/snmp":    "Udp: InErrors\nUdp: 9\n",
				"net/snmp6":   "Udp6InErrors 1\nUdp6InErrors 2\n",
			},
			want: map[string]float64{"node_netstat_Udp_InErrors": 9, "node_netstat_Tcp_InSegs": 2, "node_netstat_Udp6_InErrors": 2},
		},
		{
			name:    "missing netstat still emits snmp",
			files:   map[string]string{"net/snmp": "Tcp: InSegs\nTcp: 5\n"},
			want:    map[string]float64{"node_netstat_Tcp_InSegs": 5},
			wantErr: "net/netstat",
		},
		{
			name:    "odd protocol name is escaped like node_exporter",
			files:   map[string]string{"net/netstat": "A-B: InErrors\nA-B: 1\n", "net/snmp": ""},
			want:    map[string]float64{"node_netstat_A_B_InErrors": 1},
			wantErr: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewNetstat(Options{ProcRoot: genARoot(t, tt.files)})
			for range 2 { // the second run uses the cached names
				got, err := collectB(t, g)
				wantErrAt(t, err, tt.wantErr)
				if len(got) != len(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("%s = %v, want %v", k, got[k], v)
					}
				}
			}
		})
	}
}

func fuzzNetstatSeed(f *testing.F, rel string) {
	f.Helper()
	seed, err := os.ReadFile(filepath.Join(fixtureRootB(f), rel))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
}

// checkNetstatParsed asserts the invariants every parse result keeps.
func checkNetstatParsed(t *testing.T, p *netstatParsed) {
	t.Helper()
	end := 0
	var names [][]byte
	for i := range p.Sections {
		sec := &p.Sections[i]
		if sec.First != end || sec.End < sec.First || sec.End > len(p.Fields) {
			t.Fatalf("section %d covers [%d,%d) after %d", i, sec.First, sec.End, end)
		}
		end = sec.End
		if names = sec.Names(names); len(names) != sec.End-sec.First {
			t.Fatalf("section %q: %d names for %d values", sec.Proto, len(names), sec.End-sec.First)
		}
	}
	if end != len(p.Fields) {
		t.Fatalf("sections cover %d of %d fields", end, len(p.Fields))
	}
	for _, f := range p.Fields {
		if f.Bad && f.Value != 0 || math.IsInf(f.Value, 0) {
			t.Fatalf("bad field %+v", f)
		}
	}
}

func FuzzParseNetstat(f *testing.F) {
	fuzzNetstatSeed(f, "net/netstat")
	fuzzNetstatSeed(f, "net/snmp")
	f.Add([]byte("Tcp: A B\nTcp: 1 2\nX\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p netstatParsed
		_ = parseNetstat(data, "netstat", &p)
		checkNetstatParsed(t, &p)
	})
}

func FuzzParseSNMP6(f *testing.F) {
	fuzzNetstatSeed(f, "net/snmp6")
	f.Fuzz(func(t *testing.T, data []byte) {
		var p netstatParsed
		_ = parseSNMP6(data, "snmp6", &p)
		checkNetstatParsed(t, &p)
	})
}
