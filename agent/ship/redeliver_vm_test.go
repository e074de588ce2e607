package ship_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// holeLimit is the longest hole accepted in a series sampled every second.
const holeLimit = 1500 * time.Millisecond

// TestRedeliverAgentVMKilled runs a real agent (stat at 1s) against two
// real VictoriaMetrics, round robin, kills the first with SIGKILL, starts
// it again on its data, and reads node_context_switches_total back from
// both: with the redelivery window, no hole longer than 1.5s, although
// the killed server lost what it acknowledged in its last seconds.
//
// PROCFLEET_REDELIVER_RUNS=5 repeats it and runs each time without the
// window too (ship.redeliver_window: 0), logging the largest holes of
// both: the figures of the design notes.
func TestRedeliverAgentVMKilled(t *testing.T) {
	runs := testenv.Runs(t, "PROCFLEET_REDELIVER_RUNS", 1)
	var with, without []time.Duration
	for i := range runs {
		with = append(with, agentKillRun(t, fmt.Sprintf("with-%d", i), 10*time.Second))
		if runs > 1 {
			without = append(without, agentKillRun(t, fmt.Sprintf("without-%d", i), 0))
		}
	}
	t.Logf("largest hole across both stores, %d runs: with the window %v (max %s); without %v (max %s)",
		runs, with, slices.Max(with), without, maxOf(without))
	if m := slices.Max(with); m > holeLimit {
		t.Fatalf("a hole of %s with the redelivery window; want at most %s", m, holeLimit)
	}
}

func maxOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// agentKillRun does one run and returns the largest hole, in the merged
// samples of both stores, between 3s after the agent's start and 1s
// before its stop.
func agentKillRun(t *testing.T, name string, window time.Duration) time.Duration {
	t.Helper()
	vm1 := testenv.StartVM(t, "-inmemoryDataFlushInterval=5s")
	vm2 := testenv.StartVM(t, "-inmemoryDataFlushInterval=5s")
	host := "redeliver-" + name
	cfg := config.DefaultAgent()
	cfg.Hostname, cfg.Listen = host, ""
	g := &cfg.Generators
	for _, p := range []*config.Generator{&g.Netdev, &g.Netstat, &g.Diskstats, &g.Sockstat, &g.Filefd,
		&g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	cfg.Ship.Upstreams = []string{vm1.ImportURL, vm2.ImportURL}
	cfg.Ship.ProbeInterval = config.Duration(time.Second)
	cfg.Ship.Timeouts.Connect = config.Duration(time.Second)
	cfg.Ship.RedeliverWindow = config.Duration(window)
	a, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := testenv.StopOnce(cancel, done, "the agent's Run", 30*time.Second)
	t.Cleanup(func() { _ = stop() })
	<-a.Ready()
	start := time.Now()

	match := `node_context_switches_total{instance="` + host + `"}`
	sleepUntil(start.Add(8 * time.Second))
	vm1.Kill()
	killed := time.Now()
	sleepUntil(killed.Add(5 * time.Second))
	vm1.Restart(t)
	sleepUntil(time.Now().Add(4 * time.Second))
	if err := stop(); err != nil {
		t.Fatalf("%s: agent Run: %v", name, err)
	}
	end := time.Now()
	ts := testenv.MergedTimestamps(t, match, vm1, vm2)
	hole, at := testenv.LargestHole(ts, start.Add(3*time.Second), end.Add(-time.Second))
	t.Logf("%s: %d samples; largest hole %s at %s (kill at %s)", name, len(ts), hole,
		at.Sub(start).Round(time.Millisecond), killed.Sub(start).Round(time.Millisecond))
	return hole
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
