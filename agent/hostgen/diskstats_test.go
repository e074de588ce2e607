package hostgen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestParseDiskstats(t *testing.T) {
	type dev struct {
		n     int
		first uint64
		last  uint64 // Vals[n-1]
	}
	tests := []struct {
		name    string
		in      string
		want    map[string]dev
		wantErr string
	}{
		{
			name: "kernel 4.x, 4.18 and 5.5 lines",
			in: "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n" +
				" 259 0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n" +
				" 254\t0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n",
			want: map[string]dev{"sda": {11, 1, 11}, "nvme0n1": {15, 1, 15}, "vda": {17, 1, 17}},
		},
		{
			name: "short and empty lines are skipped silently",
			in:   "8 48 sdd 1 2 3\n\n 8 0 sda 18446744073709551615 2 3 4 5 6 7 8 9 10 11\n",
			want: map[string]dev{"sda": {11, 18446744073709551615, 11}},
		},
		{
			name:    "bad counter spoils its line only",
			in:      "8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n8 16 sdb 1 2 3 4 5 6 7 8 9 10 11\n",
			want:    map[string]dev{"sdb": {11, 1, 11}},
			wantErr: "diskstats line 1,sda,counter 3",
		},
		{
			name:    "major number over 32 bits",
			in:      "4294967296 0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
			want:    map[string]dev{},
			wantErr: "line 1,device numbers",
		},
		{
			name:    "bad number on a short line",
			in:      "8 0 sda 1 -2\n",
			want:    map[string]dev{},
			wantErr: "line 1,field 5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, _, err := parseDiskstats([]byte(tt.in), "/proc/diskstats", nil, nil)
			wantErrAt(t, err, tt.wantErr)
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d devices, want %d", len(lines), len(tt.want))
			}
			for _, l := range lines {
				w, ok := tt.want[string(l.Name)]
				got := dev{l.N, l.Vals[0], l.Vals[l.N-1]}
				if !ok || got != w {
					t.Errorf("%s = %+v, want %+v", l.Name, got, w)
				}
			}
		})
	}
}

func TestDiskstatsSeries(t *testing.T) {
	root := genARoot(t, map[string]string{"diskstats": "" +
		" 7 0 loop0 1 2 3 4 5 6 7 8 9 10 11\n" +
		" 8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n" +
		" 8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n" +
		" 259 1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11\n" +
		" 252 0 dm-0 1 2 3 4 5 6 7 8 9 10 11\n"})
	m, err := collectB(t, NewDiskstats(Options{ProcRoot: root}))
	wantErrAt(t, err, "")
	want := map[string]float64{
		`node_disk_reads_completed_total{device="sda"}`:             1,
		`node_disk_read_bytes_total{device="sda"}`:                  3 * 512,
		`node_disk_read_time_seconds_total{device="sda"}`:           0.004,
		`node_disk_io_now{device="sda"}`:                            9,
		`node_disk_discarded_sectors_total{device="sda"}`:           14,
		`node_disk_flush_requests_time_seconds_total{device="sda"}`: 0.017,
		`node_disk_io_time_weighted_seconds_total{device="dm-0"}`:   0.011,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if n := len(m); n != 17+11 {
		t.Errorf("got %d series, want %d (sda and dm-0 only)", n, 17+11)
	}
}

func FuzzParseDiskstats(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join(fixtureRootB(f), "diskstats"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 0 x 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _, _ := parseDiskstats(data, "diskstats", nil, nil)
		for _, l := range lines {
			if l.N < diskstatsMinStats || l.N > diskstatsMaxStats {
				t.Fatalf("device %q has %d counters", l.Name, l.N)
			}
			if len(l.Name) == 0 || !bytes.Contains(data, l.Name) {
				t.Fatalf("bad device name %q", l.Name)
			}
		}
	})
}
