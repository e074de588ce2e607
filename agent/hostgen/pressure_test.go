package hostgen

import (
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestPressure(t *testing.T) {
	const line = "avg10=0.00 avg60=0.00 avg300=0.00 total="
	runGenA(t, func(o Options) emit.Generator { return NewPressure(o) }, []genACase{
		{name: "all four", files: map[string]string{
			"pressure/cpu":    "some " + line + "1000000\nfull " + line + "5\n",
			"pressure/io":     "some " + line + "2000000\nfull " + line + "18446744073709551615\n",
			"pressure/memory": "some " + line + "3\nfull " + line + "4\n",
			"pressure/irq":    "full " + line + "7000000",
		}, want: map[string]float64{
			"node_pressure_cpu_waiting_seconds_total":    1,
			"node_pressure_io_waiting_seconds_total":     2,
			"node_pressure_io_stalled_seconds_total":     18446744073709551615.0 / 1000 / 1000,
			"node_pressure_memory_waiting_seconds_total": 3.0 / 1000 / 1000,
			"node_pressure_memory_stalled_seconds_total": 4.0 / 1000 / 1000,
			"node_pressure_irq_stalled_seconds_total":    7,
		}},
		{name: "no pressure at all", files: map[string]string{}, want: map[string]float64{}},
		{name: "cpu only, no full line", files: map[string]string{"pressure/cpu": "some " + line + "1000000\n"},
			want: map[string]float64{"node_pressure_cpu_waiting_seconds_total": 1}},
		{name: "memory without full", files: map[string]string{
			"pressure/memory": "some " + line + "3\n",
			"pressure/irq":    "full " + line + "7000000\n",
		}, want: map[string]float64{"node_pressure_irq_stalled_seconds_total": 7}, wantErr: `memory: no valid "full" line`},
		{name: "bad total", files: map[string]string{
			"pressure/cpu": "some " + line + "x\n",
			"pressure/io":  "some " + line + "2000000\nfull " + line + "0\n",
		}, want: map[string]float64{"node_pressure_io_waiting_seconds_total": 2, "node_pressure_io_stalled_seconds_total": 0},
			wantErr: `cpu line 1: some: "x" is not an unsigned integer`},
		{name: "bad key", files: map[string]string{"pressure/cpu": "some avg10=0.00 avg61=0.00 avg300=0.00 total=1\n"},
			want: map[string]float64{}, wantErr: "cpu line 1: some: want avg60= in field 3"},
	})
}

func FuzzPressure(f *testing.F) {
	for _, r := range []string{"cpu", "io", "memory"} {
		f.Add(readFixtureA(f, "pressure/"+r))
	}
	f.Add([]byte("full avg10=1 avg60=2 avg300=3 total=4"))
	var fields [][]byte
	f.Fuzz(func(t *testing.T, data []byte) {
		some, full, err := parsePressure(data, "pressure", &fields)
		if err == nil && (some.total != 0 && !some.ok || full.total != 0 && !full.ok) {
			t.Fatalf("total without ok: %+v %+v", some, full)
		}
	})
}
