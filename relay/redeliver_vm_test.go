package relay

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// holeLimit is the longest hole accepted in a series sampled every second.
const holeLimit = 1500 * time.Millisecond

// TestRedeliverRelayVMKilled pushes one sample a second through a relay
// that forwards to two real VictoriaMetrics (ordered, the relay's
// default), kills the first with SIGKILL, starts it again on its data and
// reads the series back from both: with the redelivery window the bodies
// it acknowledged in its last seconds are sent again from the write-ahead
// log to the second, and no hole is longer than 1.5s.
//
// PROCFLEET_REDELIVER_RUNS=5 repeats it and runs each time without the
// window too, logging the largest holes of both.
func TestRedeliverRelayVMKilled(t *testing.T) {
	runs := testenv.Runs(t, "PROCFLEET_REDELIVER_RUNS", 1)
	var with, without []time.Duration
	for i := range runs {
		with = append(with, relayKillRun(t, fmt.Sprintf("with-%d", i), 10*time.Second))
		if runs > 1 {
			without = append(without, relayKillRun(t, fmt.Sprintf("without-%d", i), 0))
		}
	}
	t.Logf("largest hole across both stores, %d runs: with the window %v (max %s); without %v",
		runs, with, slices.Max(with), without)
	if m := slices.Max(with); m > holeLimit {
		t.Fatalf("a hole of %s with the redelivery window; want at most %s", m, holeLimit)
	}
}

// relayKillRun does one run and returns the largest hole, in the merged
// samples of both stores, between 2s after the first push and 1s before
// the last.
func relayKillRun(t *testing.T, name string, window time.Duration) time.Duration {
	t.Helper()
	vm1 := testenv.StartVM(t, "-inmemoryDataFlushInterval=5s")
	vm2 := testenv.StartVM(t, "-inmemoryDataFlushInterval=5s")
	cfg := testConfig(t, vm1.ImportURL, vm2.ImportURL)
	cfg.Ship.ProbeInterval = config.Duration(time.Second)
	cfg.Ship.RedeliverWindow = config.Duration(window)
	r := start(t, cfg)
	series := "procfleet_relay_redeliver_test"
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var pushErrs []string
	first := time.Now().Truncate(time.Second).Add(time.Second)
	wg.Go(func() {
		// Timestamps on the grid, as the agent's: a slow answer of the
		// relay (an fsync on a loaded machine) delays a push, not its
		// sample.
		for n := 0; ; n++ {
			at := first.Add(time.Duration(n) * time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			line := fmt.Sprintf("%s{run=%q} %d %d\n", series, name, n, at.UnixMilli())
			resp, err := http.Post(r.url, "text/plain", strings.NewReader(line))
			switch {
			case err != nil:
				pushErrs = append(pushErrs, err.Error())
			case resp.StatusCode != http.StatusNoContent:
				pushErrs = append(pushErrs, resp.Status)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	})
	begin := first
	sleepUntil(begin.Add(8 * time.Second))
	vm1.Kill()
	killed := time.Now()
	sleepUntil(killed.Add(5 * time.Second))
	vm1.Restart(t)
	sleepUntil(time.Now().Add(4 * time.Second))
	cancel()
	wg.Wait()
	end := time.Now()
	if len(pushErrs) > 0 {
		t.Fatalf("%s: pushes to the relay failed: %v", name, pushErrs)
	}
	waitFor(t, "the log forwarded", 10*time.Second, func() bool { return r.WAL().Len() == 0 })
	if err := r.stop(); err != nil {
		t.Fatalf("%s: relay Run: %v", name, err)
	}
	ts := testenv.MergedTimestamps(t, series+`{run="`+name+`"}`, vm1, vm2)
	hole, at := testenv.LargestHole(ts, begin.Add(2*time.Second), end.Add(-time.Second))
	t.Logf("%s: %d samples; largest hole %s at %s (kill at %s)", name, len(ts), hole,
		at.Sub(begin).Round(time.Millisecond), killed.Sub(begin).Round(time.Millisecond))
	return hole
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
