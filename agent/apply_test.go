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

// TestApplyLive changes generators, upstream and compression of a running
// agent: the new settings take effect and no scan is lost across the
// change (every timestamp of the 250ms grid is in one of the two
// VictoriaMetrics).
func TestApplyLive(t *testing.T) {
	vm1, vm2 := testenv.StartVM(t), testenv.StartVM(t)
	cfg := fixtureConfig(t, vm1.ImportURL, "apply-host")
	cfg.FullEvery = 1
	g := config.DefaultGenerators()
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	g.Loadavg.Interval = config.Duration(250 * time.Millisecond)
	cfg.Generators = g
	a, stop := runAgent(t, cfg)
	time.Sleep(1500 * time.Millisecond)

	next := cfg
	next.Ship.Upstreams = []string{vm2.ImportURL}
	next.Generators.Meminfo = config.Generator{Enabled: true, Interval: config.Duration(250 * time.Millisecond)}
	next.Compress.Level = 1
	bad := next
	bad.Generators.Meminfo.Interval = config.Duration(time.Millisecond)
	if err := a.Apply(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "generators.meminfo.interval") {
		t.Fatalf("Apply of an invalid config: %v", err)
	}
	if err := a.Apply(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var ts []int64
	for _, vm := range []*testenv.VM{vm1, vm2} {
		vm.Flush(t)
		for _, s := range vm.Export(t, `node_load1{instance="apply-host"}`) {
			ts = append(ts, s.Timestamps...)
		}
	}
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if len(ts) < 8 {
		t.Fatalf("only %d scans of node_load1 arrived", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if ts[i]-ts[i-1] != 250 {
			t.Fatalf("scans missing between %d and %d across the change", ts[i-1], ts[i])
		}
	}
	if s := vm2.Export(t, `node_memory_MemTotal_bytes{instance="apply-host"}`); len(s) != 1 {
		t.Fatalf("meminfo enabled live: %d series in the new upstream", len(s))
	}
	if s := vm1.Export(t, `node_memory_MemTotal_bytes{instance="apply-host"}`); len(s) != 0 {
		t.Fatalf("meminfo reached the old upstream before it was enabled")
	}
}
