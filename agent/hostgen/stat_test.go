package hostgen

import (
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

// statSeriesA returns the 10 series of one CPU with the given times in
// ticks, and adds them to m.
func statSeriesA(m map[string]float64, cpu string, ticks ...float64) map[string]float64 {
	modes := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
	for i := 0; i < 10; i++ {
		v := 0.0
		if i < len(ticks) {
			v = ticks[i] / 100
		}
		if i < 8 {
			m[`node_cpu_seconds_total{cpu="`+cpu+`",mode="`+modes[i]+`"}`] = v
		} else {
			m[`node_cpu_guest_seconds_total{cpu="`+cpu+`",mode="`+[]string{"user", "nice"}[i-8]+`"}`] = v
		}
	}
	return m
}

func statSinglesA(intr, ctxt, forks, btime, running, blocked float64) map[string]float64 {
	return map[string]float64{
		"node_intr_total": intr, "node_context_switches_total": ctxt, "node_forks_total": forks,
		"node_boot_time_seconds": btime, "node_procs_running": running, "node_procs_blocked": blocked,
	}
}

func TestStat(t *testing.T) {
	const good = "cpu  10 0 10 10 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n" +
		"intr 100 1 2 3\nctxt 200\nbtime 300\nprocesses 400\nprocs_running 5\nprocs_blocked 6\n" +
		"softirq 10 1 1 1 1 1 1 1 1 1 1\n"
	runGenA(t, func(o Options) emit.Generator { return NewStat(o) }, []genACase{
		{name: "good", files: map[string]string{"stat": good},
			want: statSeriesA(statSinglesA(100, 200, 400, 300, 5, 6), "0", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)},
		{name: "short cpu line and huge counter", files: map[string]string{"stat": "cpu3 1 2 3\ncpu12 18446744073709551615\nctxt 18446744073709551615\n"},
			want: statSeriesA(statSeriesA(statSinglesA(0, 18446744073709551615, 0, 0, 0, 0), "3", 1, 2, 3), "12", 18446744073709551615)},
		{name: "bad cpu column", files: map[string]string{"stat": "cpu0 1 x 3\ncpu1 1\nctxt 7\n"},
			want: statSeriesA(statSinglesA(0, 7, 0, 0, 0, 0), "1", 1), wantErr: "line 1: cpu0 column 2"},
		{name: "bad cpu name", files: map[string]string{"stat": "cpux 1 2\nctxt 7\n"},
			want: statSinglesA(0, 7, 0, 0, 0, 0), wantErr: `line 1: bad CPU name "cpux"`},
		{name: "bad single line", files: map[string]string{"stat": "ctxt -1\nbtime 5\n"},
			want: func() map[string]float64 {
				m := statSinglesA(0, 0, 0, 5, 0, 0)
				delete(m, "node_context_switches_total")
				return m
			}(),
			wantErr: "line 1: ctxt"},
		{name: "short softirq line", files: map[string]string{"stat": "softirq 1 2\n"},
			want: statSinglesA(0, 0, 0, 0, 0, 0), wantErr: "line 1: softirq"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
		{name: "empty", files: map[string]string{"stat": ""}, want: statSinglesA(0, 0, 0, 0, 0, 0)},
	})
}

func TestStatSoftirqVectors(t *testing.T) {
	root := genARoot(t, map[string]string{"stat": "softirq 55 1 2 3 4 5 6 7 8 9 10\n"})
	g := NewStat(Options{ProcRoot: root})
	g.SoftIRQVectors = true
	out, err := emit.Collect(g)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range softirqVectors {
		want := `node_softirqs_total{vector="` + v + `"} ` + string(rune('1'+i))
		if i == 9 {
			want = `node_softirqs_total{vector="rcu"} 10`
		}
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestStatMonotonic checks node_exporter's guard against CPU times going
// backwards: a small step back keeps the old value, an idle time falling by
// 3 s or more starts the CPU afresh.
func TestStatMonotonic(t *testing.T) {
	root := genARoot(t, map[string]string{"stat": "cpu0 1000 0 0 1000 0 0 0 0 0 0\n"})
	g := NewStat(Options{ProcRoot: root})
	step := func(content string, wantUser, wantIdle float64) {
		t.Helper()
		genARoot2(t, root, "stat", content)
		out, err := emit.Collect(g)
		if err != nil {
			t.Fatal(err)
		}
		m := parseA(t, out)
		if u, i := m[`node_cpu_seconds_total{cpu="0",mode="user"}`], m[`node_cpu_seconds_total{cpu="0",mode="idle"}`]; u != wantUser || i != wantIdle {
			t.Fatalf("after %q: user %v idle %v, want %v %v", content, u, i, wantUser, wantIdle)
		}
	}
	step("cpu0 1000 0 0 1000 0 0 0 0 0 0\n", 10, 10)
	step("cpu0 900 0 0 1100 0 0 0 0 0 0\n", 10, 11) // user went back: kept
	step("cpu0 500 0 0 700 0 0 0 0 0 0\n", 5, 7)    // idle fell 4 s: afresh
	step("cpu1 1 0 0 1 0 0 0 0 0 0\n", 0, 0)        // cpu0 gone
	step("cpu0 100 0 0 100 0 0 0 0 0 0\n", 1, 1)    // back: afresh
}

func FuzzStat(f *testing.F) {
	f.Add(readFixtureA(f, "stat"))
	f.Add([]byte("cpu-1 1\ncpu99999999 1 2\nsoftirq 1 2 3 4 5 6 7 8 9 10 11\nctxt x\n"))
	var v statValues
	var fields [][]byte
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = parseStat(data, "stat", &v, &fields)
		for _, c := range v.cpus {
			if c.id < 0 {
				t.Fatalf("negative CPU id %d", c.id)
			}
		}
	})
}
