package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestApplyLive changes generators, an interval, the upstream and the
// compression of a running agent: the new settings take effect, and no scan
// is lost across the change: every scan the agent counts arrived in one of
// the two VictoriaMetrics. Nothing here depends on how punctually scans run
// on a loaded machine: stamps are grid points, and the grid tells which
// interval a scan ran at.
func TestApplyLive(t *testing.T) {
	const before, after = 250, 400 // loadavg's interval in ms; a grid point of one is rarely one of the other
	vm1, vm2 := testenv.StartVM(t), testenv.StartVM(t)
	cfg := fixtureConfig(t, vm1.ImportURL, "apply-host")
	cfg.FullEvery = 1 // node_load1 is written on every scan
	g := config.DefaultGenerators()
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	g.Loadavg.Interval = config.Duration(before * time.Millisecond)
	cfg.Generators = g
	a, stop := runAgent(t, cfg)
	runs := a.sets["generator"].GetOrCreateCounter(`procfleet_generator_runs_total{generator="loadavg"}`)
	waitRuns := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for runs.Get() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d scans of loadavg in 30s, want %d", runs.Get(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRuns(5)

	next := cfg
	next.Ship.Upstreams = []string{vm2.ImportURL}
	next.Generators.Meminfo = config.Generator{Enabled: true, Interval: config.Duration(after * time.Millisecond)}
	next.Generators.Loadavg.Interval = config.Duration(after * time.Millisecond)
	next.Compress.Level = 1
	bad := next
	bad.Generators.Meminfo.Interval = config.Duration(time.Millisecond)
	if err := a.Apply(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "generators.meminfo.interval") {
		t.Fatalf("Apply of an invalid config: %v", err)
	}
	if err := a.Apply(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	waitRuns(runs.Get() + 6)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// VictoriaMetrics makes imported rows searchable in its own time: poll.
	n := runs.Get()
	var ts []int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ts = ts[:0]
		for _, vm := range []*testenv.VM{vm1, vm2} {
			vm.Flush(t)
			for _, s := range vm.Export(t, `node_load1{instance="apply-host"}`) {
				ts = append(ts, s.Timestamps...)
			}
		}
		slices.Sort(ts)
		ts = slices.Compact(ts)
		if uint64(len(ts)) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent ran %d scans of loadavg, %d arrived: scans lost across the change: %v", n, len(ts), ts)
		}
	}
	if uint64(len(ts)) != n {
		t.Fatalf("the agent ran %d scans of loadavg, %d stamps arrived: %v", n, len(ts), ts)
	}
	// A stamp on one grid only tells the interval it ran at.
	var old, cur []int64
	for _, v := range ts {
		switch {
		case v%before == 0 && v%after != 0:
			old = append(old, v)
		case v%after == 0 && v%before != 0:
			cur = append(cur, v)
		case v%before != 0 && v%after != 0:
			t.Errorf("stamp %d is on neither grid", v)
		}
	}
	if len(old) < 3 || len(cur) < 2 {
		t.Fatalf("%d scans on the %dms grid only, %d on the %dms grid only; want both intervals seen: %v", len(old), before, len(cur), after, ts)
	}
	if old[len(old)-1] > cur[0] {
		t.Fatalf("a scan at %dms (stamp %d) after one at %dms (stamp %d): the interval changed back and forth: %v",
			before, old[len(old)-1], after, cur[0], ts)
	}
	if s := vm2.Export(t, `node_memory_MemTotal_bytes{instance="apply-host"}`); len(s) != 1 {
		t.Fatalf("meminfo enabled live: %d series in the new upstream", len(s))
	}
	if s := vm1.Export(t, `node_memory_MemTotal_bytes{instance="apply-host"}`); len(s) != 0 {
		t.Fatalf("meminfo reached the old upstream before it was enabled")
	}
}
