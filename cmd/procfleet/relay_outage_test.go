package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// Replay budget of the direct agent of TestRelayUpstreamOutage, and the
// most one of its requests carries: a replayed request merges records up
// to compress.target_bytes (4KiB) or is one record, a batch of one flush,
// about 5KiB a second from the fixture tree.
const (
	outageBudget   = 20 << 10 // bytes per second, burst 0: one second of it
	outageOneBatch = 16 << 10
)

// TestRelayUpstreamOutage kills VictoriaMetrics for an outage (20s, or
// PROCFLEET_OUTAGE, a Go duration such as 3m, for a manual run) while a
// relay keeps taking a load generator's bodies and a real agent's batches
// (agent "outage-relayed", upstream the relay), and a second agent
// ("outage-direct", upstream VictoriaMetrics, bandwidth budget 20KiB/s)
// spools to disk. Once VictoriaMetrics is back: every body the relay
// accepted is there; both agents' samples of the outage window are there
// without a gap over 3s; the direct agent used its spool and replayed it
// within its budget, by the token bucket's own bound: over any span of
// samples of its sent-bytes counter, taken every 500ms, no more than
// budget × span + burst + one batch, which for a 5s span is budget × 1.2 ×
// 5s + one batch. A backlog of 20s (about 100KB) sent unthrottled would
// break that bound over any span shorter than about 3s.
//
// Measured once with PROCFLEET_OUTAGE=2m: 8032 bodies (1.0M samples)
// through the relay, all delivered; the direct agent spooled 649KB in 84
// batches and emptied its spool about 43s after the restart, at a peak 5s
// rate of 21.9KB/s (bound 24.6KB/s + one batch); the test took 189s.
//
// VictoriaMetrics keeps what it took in the last seconds in memory (up to
// -inmemoryDataFlushInterval, 5s, even after /internal/force_flush, which
// makes data searchable, not durable), and a SIGKILL loses it: so that the
// test checks procfleet and not that, the load generator starts at the
// kill, and of the agents, which run throughout, only the samples from the
// kill on are checked.
func TestRelayUpstreamOutage(t *testing.T) {
	outage := 20 * time.Second
	if v := os.Getenv("PROCFLEET_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("PROCFLEET_OUTAGE=%q: want a positive Go duration such as 3m", v)
		}
		outage = d
	}
	vm := testenv.StartVM(t, "-dedup.minScrapeInterval=1ms", "-search.disableCache")
	r := newRelay(t, filepath.Join(t.TempDir(), "wal"), relayShipConfig, vm.ImportURL)
	r.start()
	r.waitReady()
	relayed := startAgent(t, "outage-relayed", r.importURL(), 0)
	direct := startAgent(t, "outage-direct", vm.ImportURL, outageBudget)
	for _, a := range []*binProc{relayed, direct} {
		testenv.Eventually(t, 20*time.Second, 200*time.Millisecond, a.name+" delivering", func() error {
			v, err := a.metric("procfleet_ship_bytes_total")
			if err == nil && v == 0 {
				err = fmt.Errorf("no bytes sent yet")
			}
			return err
		})
	}

	vm.Kill()
	killAt := time.Now()
	g := newLoadGen(t, r.importURL(), "relay_outage_sample")
	g.start(2, 20*time.Millisecond)
	time.Sleep(outage)
	if v := r.mustMetric("procfleet_spool_records"); v == 0 {
		t.Errorf("the relay's log is empty after a %s outage; it took nothing", outage)
	}
	backlog := direct.mustMetric("procfleet_spool_bytes")
	backlogRecords := direct.mustMetric("procfleet_spool_records")
	if backlogRecords == 0 || backlog/backlogRecords > outageOneBatch/2 {
		t.Fatalf("direct agent's spool holds %v bytes in %v records; want records of at most %d bytes",
			backlog, backlogRecords, outageOneBatch/2)
	}
	sent := sampleCounter(direct, "procfleet_ship_bytes_total", 500*time.Millisecond)
	restartAt := time.Now()
	vm.Restart(t)
	time.Sleep(time.Second)
	g.halt()

	testenv.Eventually(t, 2*outage+30*time.Second, 100*time.Millisecond, "the direct agent's spool to drain", func() error {
		v, err := direct.metric("procfleet_spool_records")
		if err == nil && v != 0 {
			err = fmt.Errorf("procfleet_spool_records %v", v)
		}
		return err
	})
	replay := time.Since(restartAt)
	r.waitDrained(30*time.Second + outage/2)
	relayDrain := time.Since(restartAt)
	samples := sent.stop()
	for _, p := range []*binProc{r.binProc, relayed, direct} {
		if !p.running() {
			t.FailNow()
		}
	}

	s := g.verify(vm)
	if s.accepted == 0 {
		t.Fatal("the relay accepted no body")
	}
	for _, a := range []string{"outage-relayed", "outage-direct"} {
		checkCoverage(t, vm, a, killAt, restartAt, 3*time.Second)
	}
	spooled := direct.mustMetric("procfleet_ship_spooled_batches_total")
	replayed := direct.mustMetric("procfleet_ship_replayed_batches_total")
	if spooled == 0 || replayed < spooled {
		t.Errorf("direct agent spooled %v batches and replayed %v; want some spooled, all replayed", spooled, replayed)
	}
	if v := direct.mustMetric("procfleet_ship_dropped_batches_total"); v != 0 {
		t.Errorf("direct agent dropped %v batches", v)
	}
	if v := relayed.mustMetric("procfleet_ship_spooled_batches_total"); v != 0 {
		t.Errorf("relayed agent spooled %v batches; the relay should have taken them all", v)
	}
	peak := checkBudget(t, samples, outageBudget, outageOneBatch)
	t.Logf("outage %s (PROCFLEET_OUTAGE); relay bodies: %d accepted (%d samples), %d refused, %d unanswered",
		outage, s.accepted, s.acceptedSamples, s.refused, s.unknown)
	t.Logf("relay: log drained %s after VictoriaMetrics was restarted", relayDrain.Round(100*time.Millisecond))
	t.Logf("direct agent: %.0f bytes in %.0f records spooled (%v batches), spool empty %s after the restart; peak 5s rate %.0f B/s, budget %d B/s (1.2x: %.0f)",
		backlog, backlogRecords, spooled, replay.Round(100*time.Millisecond), peak, outageBudget, 1.2*outageBudget)
}

// startAgent starts the agent binary named name on the fixture tree
// (every series written every second), with a spool, pushing to upstream
// within budget bytes per second (0: unlimited), and waits until it
// answers.
func startAgent(t *testing.T, name, upstream string, budget int) *binProc {
	t.Helper()
	fixture, err := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`hostname: %s
listen: %s
procfs_root: %s
sysfs_root: %s
full_every: 1
compress: {target_bytes: 4KiB, flush_age: 1s}
ship:
  upstreams: [%s]
  timeouts: {connect: 1s, send: 5s, response: 5s}
  retry: {min_backoff: 100ms, max_backoff: 1s}
  probe_interval: 500ms
limit: {bytes_per_second: %d/s, burst: 0}
spool: {dir: %s}
`, name, addr, filepath.Join(fixture, "proc"), filepath.Join(fixture, "sys"), upstream, budget, filepath.Join(dir, "spool")))
	p := newBinProc(t, name, addr, func() []string { return []string{"agent", "--config", cfg} })
	p.start()
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, name+"'s /healthz", func() error {
		return getErr("http://" + addr + "/healthz")
	})
	return p
}

// checkCoverage checks that instance's node_context_switches_total, one
// sample a second, covers from..to without a gap over maxGap.
func checkCoverage(t *testing.T, vm *testenv.VM, instance string, from, to time.Time, maxGap time.Duration) {
	t.Helper()
	q := `node_context_switches_total{instance="` + instance + `"}`
	testenv.Eventually(t, 15*time.Second, 300*time.Millisecond, q+" covering the outage", func() error {
		vm.Flush(t)
		series, err := vm.TryExport(q)
		if err != nil {
			return err
		}
		if len(series) != 1 {
			return fmt.Errorf("%d series", len(series))
		}
		ts := []int64{from.UnixMilli()}
		for _, v := range series[0].Timestamps {
			if v > from.UnixMilli() && v < to.UnixMilli() {
				ts = append(ts, v)
			}
		}
		ts = append(ts, to.UnixMilli())
		slices.Sort(ts)
		for i := 1; i < len(ts); i++ {
			if gap := time.Duration(ts[i]-ts[i-1]) * time.Millisecond; gap > maxGap {
				return fmt.Errorf("a gap of %s at %s (outage %s to %s, %d samples in it)",
					gap, time.UnixMilli(ts[i-1]).Format("15:04:05.000"), from.Format("15:04:05.000"), to.Format("15:04:05.000"), len(ts)-2)
			}
		}
		return nil
	})
}

// counterSample is a counter's value at a time.
type counterSample struct {
	at time.Time
	v  float64
}

// sampler reads a counter of a process's /metrics periodically.
type sampler struct {
	done    chan struct{}
	wg      sync.WaitGroup
	samples []counterSample
}

func sampleCounter(p *binProc, name string, every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if v, err := p.metric(name); err == nil {
				s.samples = append(s.samples, counterSample{time.Now(), v})
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the samples.
func (s *sampler) stop() []counterSample {
	close(s.done)
	s.wg.Wait()
	return s.samples
}

// checkBudget checks that the counter of sent bytes grew within the token
// bucket's bound, budget × span + burst (one second of budget) + one batch
// in flight, over every span of samples, and returns the highest rate over
// a span of 5s or less, long enough to hold 9 or more intervals.
func checkBudget(t *testing.T, samples []counterSample, budget, oneBatch int) float64 {
	t.Helper()
	if len(samples) < 10 {
		t.Fatalf("only %d samples of the sent bytes", len(samples))
	}
	peak := 0.0
	for i := range samples {
		for j := i + 1; j < len(samples); j++ {
			span := samples[j].at.Sub(samples[i].at)
			d := samples[j].v - samples[i].v
			if limit := float64(budget)*(span.Seconds()+1) + float64(oneBatch); d > limit {
				t.Errorf("sent %.0f bytes in %s from %s; the budget allows %.0f", d, span.Round(time.Millisecond),
					samples[i].at.Format("15:04:05.000"), limit)
				return peak
			}
			if span <= 5*time.Second && span >= 4500*time.Millisecond {
				peak = max(peak, d/span.Seconds())
			}
		}
	}
	return peak
}
