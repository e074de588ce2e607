package hostgen

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseSockstat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []sockstatLine // Proto compared as text
		wantErr string
	}{
		{
			name: "kernel output",
			in:   "sockets: used 28\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 102\nFRAG: inuse 0 memory 0\n",
			want: []sockstatLine{
				{Proto: []byte("sockets"), Sockets: true, Used: 28},
				{Proto: []byte("TCP"), Vals: [6]int64{1, 0, 2, 1, 102, 0}, Has: [6]bool{true, true, true, true, true, false}},
				{Proto: []byte("FRAG"), Vals: [6]int64{0, 0, 0, 0, 0, 0}, Has: [6]bool{true, false, false, false, false, true}},
			},
		},
		{
			name: "Go integer literals as procfs reads them, last key wins",
			in:   "TCP: inuse 010 orphan 0x10 tw 1_0 tw -3 other 5\n",
			want: []sockstatLine{
				{Proto: []byte("TCP"), Vals: [6]int64{8, 16, -3, 0, 0, 0}, Has: [6]bool{true, true, true, false, false, false}},
			},
		},
		{
			name:    "bad lines are left out",
			in:      "TCP: inuse\nUDP: inuse x\nRAW: inuse 1 mem\nFRAG: inuse 2\n",
			want:    []sockstatLine{{Proto: []byte("FRAG"), Vals: [6]int64{2}, Has: [6]bool{true}}},
			wantErr: "sockstat line 1,and 2 more",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := parseSockstat([]byte(tt.in), "/proc/net/sockstat", nil, nil)
			wantErrAt(t, err, tt.wantErr)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if string(g.Proto) != string(w.Proto) || g.Sockets != w.Sockets || g.Used != w.Used || g.Vals != w.Vals || g.Has != w.Has {
					t.Errorf("line %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestSockstatSeries(t *testing.T) {
	page := float64(os.Getpagesize())
	tests := []struct {
		name    string
		files   map[string]string
		want    map[string]float64
		wantErr string
	}{
		{
			name: "v4 and v6",
			files: map[string]string{
				"net/sockstat":  "sockets: used 3\nTCP: inuse 1 mem 2\nA-B: inuse 4\n",
				"net/sockstat6": "sockets: used 9\nTCP6: inuse 5\n",
			},
			want: map[string]float64{
				"node_sockstat_sockets_used":  3,
				"node_sockstat_TCP_inuse":     1,
				"node_sockstat_TCP_mem":       2,
				"node_sockstat_TCP_mem_bytes": 2 * page,
				"node_sockstat_A_B_inuse":     4,
				"node_sockstat_TCP6_inuse":    5,
			},
		},
		{
			name:  "no files at all is no error",
			files: map[string]string{"other": ""},
			want:  map[string]float64{},
		},
		{
			name:    "bad v6 line keeps the rest",
			files:   map[string]string{"net/sockstat": "TCP: inuse 1\n", "net/sockstat6": "UDP6: inuse\n"},
			want:    map[string]float64{"node_sockstat_TCP_inuse": 1},
			wantErr: "sockstat6 line 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewSockstat(Options{ProcRoot: genARoot(t, tt.files)})
			for range 2 {
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

func FuzzParseSockstat(f *testing.F) {
	for _, rel := range []string{"net/sockstat", "net/sockstat6"} {
		seed, err := os.ReadFile(filepath.Join(fixtureRootB(f), rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _, err := parseSockstat(data, "sockstat", nil, nil)
		n := 0
		for rest := data; len(rest) > 0; n++ {
			_, rest = nextLine(rest)
		}
		if len(lines) > n {
			t.Fatalf("%d lines parsed from %d", len(lines), n)
		}
		if len(lines) < n && err == nil {
			t.Fatalf("%d of %d lines parsed and no error", len(lines), n)
		}
		for _, l := range lines {
			if l.Sockets && l.Has != [sockstatNKeys]bool{} {
				t.Fatalf("sockets line with protocol keys: %+v", l)
			}
		}
	})
}
