package hostgen

import (
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestLoadavg(t *testing.T) {
	runGenA(t, func(o Options) emit.Generator { return NewLoadavg(o) }, []genACase{
		{name: "good", files: map[string]string{"loadavg": "0.21 0.37 0.39 1/719 19737\n"},
			want: map[string]float64{"node_load1": 0.21, "node_load5": 0.37, "node_load15": 0.39}},
		{name: "bad middle", files: map[string]string{"loadavg": "0.21 x 0.39 1/719 19737\n"},
			want: map[string]float64{"node_load1": 0.21, "node_load15": 0.39}, wantErr: "line 1: load average 2"},
		{name: "short", files: map[string]string{"loadavg": "1.5\n"},
			want: map[string]float64{"node_load1": 1.5}, wantErr: "line 1: want 3 load averages, got 1"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

func FuzzLoadavg(f *testing.F) {
	f.Add(readFixtureA(f, "loadavg"))
	f.Add([]byte("1 2"))
	var fields [][]byte
	f.Fuzz(func(t *testing.T, data []byte) {
		var loads [3]float64
		ok, err := parseLoadavg(data, "loadavg", &fields, &loads)
		if ok == [3]bool{true, true, true} && err != nil {
			t.Fatalf("all parsed but error %v", err)
		}
		if ok != [3]bool{true, true, true} && err == nil {
			t.Fatalf("%v parsed and no error", ok)
		}
	})
}
