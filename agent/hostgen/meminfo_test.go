package hostgen

import (
	"slices"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestMeminfo(t *testing.T) {
	runGenA(t, func(o Options) emit.Generator { return NewMeminfo(o) }, []genACase{
		{name: "good", files: map[string]string{"meminfo": "MemTotal:  16 kB\nHugePages_Total:   3\nHugepagesize:  2048 kB\nFileHugePages: 5 kB\nNew_Field: 1 kB\n"},
			want: map[string]float64{"node_memory_MemTotal_bytes": 16384, "node_memory_HugePages_Total": 3, "node_memory_Hugepagesize_bytes": 2097152}},
		{name: "procfs number syntax", files: map[string]string{"meminfo": "MemFree: 010 kB\nCached: 0x10\nBuffers: 1_0\n"},
			want: map[string]float64{"node_memory_MemFree_bytes": 8192, "node_memory_Cached_bytes": 16, "node_memory_Buffers_bytes": 10}},
		{name: "product wraps as in procfs", files: map[string]string{"meminfo": "MemTotal: 18014398509481984 kB\nMemFree: 18014398509481983 kB\n"},
			want: map[string]float64{"node_memory_MemTotal_bytes": 0, "node_memory_MemFree_bytes": 18446744073709550592}},
		{name: "bad lines", files: map[string]string{"meminfo": "MemTotal: 1 kB\nMemFree: x kB\nCached: 1 MB\nDirty:\nSlab: 1 kB extra\nShmem: 2 kB\n"},
			want:    map[string]float64{"node_memory_MemTotal_bytes": 1024, "node_memory_Shmem_bytes": 2048},
			wantErr: `line 2: "x" is not an unsigned integer (and 3 more bad lines)`},
		{name: "overflow", files: map[string]string{"meminfo": "MemTotal: 18446744073709551616 kB\n"},
			want: map[string]float64{}, wantErr: "line 1:"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

// FuzzMeminfo checks that a parse through the cache of known keys (the
// second parse with the same cache) gives what the first one gave.
func FuzzMeminfo(f *testing.F) {
	f.Add(readFixtureA(f, "meminfo"))
	f.Add([]byte("MemTotal: 010 kB\nX: 1 MB\n\n:"))
	f.Add([]byte("MemTotal:  7 kB\nMemFree: 5\nCached: 3 kB \nBuffers:\t0x1 kB\n"))
	var fields [][]byte
	type sample struct{ idx, val, valBytes uint64 }
	parse := func(t *testing.T, data []byte, cache *rowCache[int]) ([]sample, string) {
		var got []sample
		err := parseMeminfo(data, "meminfo", &fields, cache, func(idx int, val, valBytes uint64) {
			if valBytes != val && valBytes != 1024*val {
				t.Fatalf("%s: bytes %d for value %d", meminfoFields[idx].key, valBytes, val)
			}
			got = append(got, sample{uint64(idx), val, valBytes})
		})
		if err != nil {
			return got, err.Error()
		}
		return got, ""
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cache rowCache[int]
		cold, coldErr := parse(t, data, &cache)
		warm, warmErr := parse(t, data, &cache)
		if !slices.Equal(cold, warm) || coldErr != warmErr {
			t.Fatalf("first parse %v, %q; second %v, %q", cold, coldErr, warm, warmErr)
		}
	})
}
