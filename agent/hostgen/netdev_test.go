package hostgen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

const netdevHeadB = "Inter-|   Receive                                                |  Transmit\n" +
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"

func TestParseNetdev(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string][netdevColumns]uint64
		wantErr string // parts the error must mention, "" for none
	}{
		{
			name: "two interfaces",
			in: netdevHeadB +
				"    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n" +
				"  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want: map[string][netdevColumns]uint64{
				"lo":   {3193, 29, 0, 0, 0, 0, 0, 0, 3193, 29},
				"eth0": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			},
		},
		{
			name: "odd name, max counter, extra column, CRLF",
			in:   netdevHeadB + ` we"i:rd\x: 18446744073709551615 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17` + "\r\n",
			want: map[string][netdevColumns]uint64{
				`we"i:rd\x`: {18446744073709551615, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			},
		},
		{
			name: "only headers",
			in:   netdevHeadB,
			want: map[string][netdevColumns]uint64{},
		},
		{
			name:    "short line keeps the others",
			in:      netdevHeadB + "eth0: 1 2 3\nlo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want:    map[string][netdevColumns]uint64{"lo": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
			wantErr: "dev line 3,eth0,3 counters",
		},
		{
			name:    "overflow",
			in:      netdevHeadB + "eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want:    map[string][netdevColumns]uint64{},
			wantErr: "line 3,column 1,overflows",
		},
		{
			name:    "not a number",
			in:      netdevHeadB + "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 -15 16\n",
			want:    map[string][netdevColumns]uint64{},
			wantErr: "line 3,column 15",
		},
		{
			name:    "no colon, no name",
			in:      netdevHeadB + "eth0 1 2\n  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want:    map[string][netdevColumns]uint64{},
			wantErr: "line 3,no colon,1 more",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, _, err := parseNetdev([]byte(tt.in), "/proc/net/dev", nil, nil)
			wantErrAt(t, err, tt.wantErr)
			got := map[string][netdevColumns]uint64{}
			for _, l := range lines {
				got[string(l.Name)] = l.Vals
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d interfaces %v, want %d", len(got), got, len(tt.want))
			}
			for name, want := range tt.want {
				if got[name] != want {
					t.Errorf("%s = %v, want %v", name, got[name], want)
				}
			}
		})
	}
}

func TestNetdevMissingFile(t *testing.T) {
	g := NewNetdev(Options{ProcRoot: t.TempDir()})
	m, err := collectB(t, g)
	wantErrAt(t, err, "net/dev")
	if len(m) != 0 {
		t.Errorf("emitted %d series from a missing file", len(m))
	}
}

func FuzzParseNetdev(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(fixtureRootB(f), "net", "dev"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(netdevHeadB + "a: 1 2\nb:" + string(bytes.Repeat([]byte(" 9"), 16))))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _, err := parseNetdev(data, "dev", nil, nil)
		for _, l := range lines {
			if len(l.Name) == 0 || !bytes.Contains(data, l.Name) {
				t.Fatalf("bad interface name %q", l.Name)
			}
		}
		if err == nil && bytes.Count(data, []byte{'\n'}) > 2 && len(lines) == 0 {
			// Lines after the headers either parse or make an error;
			// only empty trailing input can vanish.
			_, rest := nextLine(data)
			_, rest = nextLine(rest)
			if len(bytes.TrimSpace(rest)) > 0 {
				t.Fatalf("input after the headers gave neither interfaces nor an error")
			}
		}
	})
}
