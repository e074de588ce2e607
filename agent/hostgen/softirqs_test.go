package hostgen

import (
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestSoftirqs(t *testing.T) {
	key := func(cpu, typ string) string {
		return `node_softirqs_functions_total{cpu="` + cpu + `",type="` + typ + `"}`
	}
	runGenA(t, func(o Options) emit.Generator { return NewSoftirqs(o) }, []genACase{
		{name: "good", files: map[string]string{"softirqs": "   CPU0  CPU1\n  HI:  1  2\n  NET_RX: 18446744073709551615 0\n  NEW_ONE: 5 5\n\n"},
			want: map[string]float64{key("0", "HI"): 1, key("1", "HI"): 2, key("0", "NET_RX"): 18446744073709551615, key("1", "NET_RX"): 0}},
		{name: "bad row skipped", files: map[string]string{"softirqs": "CPU0\nHI: -1\nRCU: 4\n"},
			want: map[string]float64{key("0", "RCU"): 4}, wantErr: "line 2: HI CPU column 0"},
		{name: "empty", files: map[string]string{"softirqs": ""}, want: map[string]float64{}, wantErr: "line 1: file is empty"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

func FuzzSoftirqs(f *testing.F) {
	f.Add(readFixtureA(f, "softirqs"))
	f.Add([]byte("CPU0\nHI: 1 x\nTIMER:\n"))
	var p softirqsParse
	f.Fuzz(func(t *testing.T, data []byte) {
		err := parseSoftirqs(data, "softirqs", &p)
		if len(data) == 0 && err == nil {
			t.Fatal("empty input without error")
		}
		for i, ok := range p.has {
			if ok && len(p.counts[i]) == 0 {
				t.Fatalf("row %s marked good with no counts", softirqTypes[i][1])
			}
		}
	})
}
