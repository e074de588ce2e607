package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// snapshot is what is read at each end of the window, per side.
type snapshot struct {
	ticks    map[int]int64 // utime+stime per pid: the agents and the VictoriaMetrics
	up, down int64         // proxy counters
	rows     float64       // vm_rows_inserted_total
	requests float64       // vm_http_requests_total of the write path
	body     float64       // request body bytes, as the sender counts them
}

// sideWindow is one side's raw results over the window.
type sideWindow struct {
	s                  *side
	start, end         snapshot
	rssPeak            int64         // peak of the sum of the agents' VmRSS
	procPeak, procHWM  map[int]int64 // per pid
	series, seriesNode float64
	seriesByPrefix     map[string]float64 // name up to its first '_'
	fresh              freshness
}

// window is the measured window, for both sides.
type window struct {
	start, end time.Time
	warmup     time.Duration
	sides      []*sideWindow
	profile    string // path of the agent's CPU profile, if taken
	floor      freshness
	// The redelivery window's cost, with -window-cost: side A's gauges
	// and the agent without a window.
	held       *held
	off        *offAgent
	offRSSPeak int64
	// What side A's process generator left unread.
	scans *ScanReport
}

// measure waits out the warm-up, measures the window on both sides at once,
// then waits for the window's last samples to become queryable and counts
// the series.
func (b *bench) measure(ctx context.Context) (*window, error) {
	probeCtx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	var probes sync.WaitGroup
	for _, s := range b.sides() {
		s.prober = newProber(s.vm, freshnessMatch(s.instance), b.o.flush)
		probes.Go(func() { s.prober.run(probeCtx) })
	}
	fl := b.floor
	fl.prober = newProber(fl.vm, []string{floorSeries}, b.o.flush)
	probes.Go(func() { fl.prober.run(probeCtx) })
	// The probers need a poll before the window: samples found at their
	// first poll have unknown arrival times.
	if err := sleepUntil(ctx, maxTime(b.started.Add(b.o.warmup), time.Now().Add(3*pollInterval))); err != nil {
		return nil, err
	}
	w := &window{warmup: time.Since(b.started)}
	w.start = time.Now()
	for _, s := range b.sides() {
		s.prober.setWindow(w.start, w.start.Add(b.o.duration))
		w.sides = append(w.sides, &sideWindow{s: s})
	}
	fl.prober.setWindow(w.start, w.start.Add(b.o.duration))
	logf("warm-up done after %s; measuring %s", w.warmup.Round(time.Millisecond), b.o.duration)
	if err := b.snapshot(ctx, w, false); err != nil {
		return nil, err
	}
	groups := [][]int{pids(b.a.agents), pids(b.b.agents)}
	if err := b.startWindowCost(w); err != nil {
		return nil, err
	}
	if w.off != nil {
		groups = append(groups, []int{w.off.proc.Pid()})
	}
	rss := newRSSPeaks(groups...)
	rssCtx, stopRSS := context.WithCancel(ctx)
	rssDone := make(chan struct{})
	go func() { defer close(rssDone); rss.run(rssCtx, 250*time.Millisecond) }()
	profDone := b.startProfile(ctx, w)

	err := sleepUntil(ctx, w.start.Add(b.o.duration))
	w.end = time.Now()
	stopRSS()
	<-rssDone
	if err != nil {
		return nil, err
	}
	if err := b.snapshot(ctx, w, true); err != nil {
		return nil, err
	}
	for i, sw := range w.sides {
		sw.rssPeak, sw.procPeak = rss.sumPeak[i], rss.procPeak
	}
	if w.off != nil {
		w.offRSSPeak = rss.sumPeak[2]
		if err := w.off.endWindow(); err != nil {
			return nil, err
		}
	}
	if err := b.finish(ctx, w, stopProbes, &probes); err != nil {
		return nil, err
	}
	if err := <-profDone; err != nil {
		logf("no CPU profile of the agent: %v", err)
		w.profile = ""
	}
	return w, nil
}

// snapshot reads CPU ticks, proxy counters and rows inserted of both sides
// into the start (end false) or the end of w.
func (b *bench) snapshot(ctx context.Context, w *window, end bool) error {
	for _, sw := range w.sides {
		s := snapshot{ticks: map[int]int64{}}
		for _, p := range append(slices.Clip(sw.s.agents), sw.s.vm.proc) {
			t, err := cpuTicks(p.Pid())
			if err != nil {
				return fmt.Errorf("side %s: %s: %w", sw.s.label, p.Name, err)
			}
			s.ticks[p.Pid()] = t
		}
		s.up, s.down = sw.s.proxy.Counters()
		rows, err := sw.s.vm.rowsInserted(ctx)
		if err != nil {
			return fmt.Errorf("side %s: rows inserted: %w", sw.s.label, err)
		}
		s.rows = rows
		if s.requests, s.body, err = b.requestCounts(ctx, sw.s); err != nil {
			return fmt.Errorf("side %s: request counts: %w", sw.s.label, err)
		}
		if end {
			sw.end = s
		} else {
			sw.start = s
		}
	}
	return nil
}

// finish waits until the probers have seen every window sample (at most
// 15s), stops them, makes everything searchable and counts the series that
// have samples in the window, evaluated at its end.
func (b *bench) finish(ctx context.Context, w *window, stopProbes func(), probes *sync.WaitGroup) error {
	deadline := time.Now().Add(15 * time.Second)
	for !(b.a.prober.caughtUp() && b.b.prober.caughtUp() && b.floor.prober.caughtUp()) && time.Now().Before(deadline) {
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
	stopProbes()
	probes.Wait()
	var err error
	if w.floor, err = b.floor.summary(); err != nil {
		return err
	}
	rng := fmt.Sprintf("[%dms]", w.end.Sub(w.start).Milliseconds())
	for _, sw := range w.sides {
		sw.fresh = sw.s.prober.summary()
		if err := sw.s.vm.flush(ctx); err != nil {
			return fmt.Errorf("side %s: %w", sw.s.label, err)
		}
		if sw.series, err = sw.s.vm.queryScalar(ctx, `count(count_over_time({__name__!=""}`+rng+`))`, w.end); err != nil {
			return fmt.Errorf("side %s: %w", sw.s.label, err)
		}
		if sw.seriesNode, err = sw.s.vm.queryScalar(ctx, `count(count_over_time({__name__=~"node_.+"}`+rng+`))`, w.end); err != nil {
			return fmt.Errorf("side %s: %w", sw.s.label, err)
		}
		byPrefix := `count by (prefix) (label_replace(count_over_time({__name__!=""}` + rng + `) keep_metric_names, "prefix", "$1", "__name__", "([^_]+).*"))`
		if sw.seriesByPrefix, err = sw.s.vm.query(ctx, byPrefix, "prefix", w.end); err != nil {
			return fmt.Errorf("side %s: %w", sw.s.label, err)
		}
		sw.procHWM = map[int]int64{}
		for _, p := range sw.s.agents {
			if _, hwm, err := memStatus(p.Pid()); err == nil {
				sw.procHWM[p.Pid()] = hwm
			}
		}
		// vmagent writes up and scrape_* even when node_exporter fails:
		// without node_* series a side measured nothing.
		if sw.seriesNode == 0 || sw.end.rows == sw.start.rows {
			return fmt.Errorf("side %s: no host metrics arrived in the window (%v node_* series of %v, %v rows)",
				sw.s.label, sw.seriesNode, sw.series, sw.end.rows-sw.start.rows)
		}
	}
	// Side A's VictoriaMetrics was flushed above.
	if w.scans, err = b.processScans(ctx, w); err != nil {
		return fmt.Errorf("side A: %w", err)
	}
	if w.off != nil {
		if w.held, err = b.heldGauges(ctx, w); err != nil {
			return fmt.Errorf("side A: %w", err)
		}
	}
	return nil
}

// startProfile fetches a CPU profile of the agent over the first
// -profile-seconds of the window (at most the window) into -profile DIR,
// when given.
// The result arrives on the channel; nil at once without -profile.
func (b *bench) startProfile(ctx context.Context, w *window) <-chan error {
	done := make(chan error, 1)
	if b.o.profile == "" {
		done <- nil
		return done
	}
	secs := max(1, min(b.o.profSecs, int(b.o.duration/time.Second)))
	path := filepath.Join(b.o.profile, "agent.cpu.pprof")
	w.profile = path
	go func() {
		done <- fetchProfile(ctx, "http://"+b.pprofAt+fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), path)
	}()
	return done
}

func fetchProfile(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return f.Close()
}

func pids(ps []*benchproc.Proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.Pid()
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// requestCounts returns the write requests the side's VictoriaMetrics
// took (vm_http_requests_total of the import or remote-write path) and
// the request body bytes its sender counted: procfleet_ship_bytes_total
// (A), vmagent_remotewrite_bytes_sent_total (B).
func (b *bench) requestCounts(ctx context.Context, s *side) (requests, body float64, err error) {
	vmText, err := benchproc.Get(ctx, s.vm.addr, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	path, from, name := `path="/api/v1/import/prometheus"`, b.agentAt, "procfleet_ship_bytes_total"
	if s == b.b {
		path, from, name = `path="/api/v1/write"`, b.vaAt, "vmagent_remotewrite_bytes_sent_total"
	}
	senderText, err := benchproc.Get(ctx, from, "/metrics")
	if err != nil {
		return 0, 0, err
	}
	return sumMetricWith(string(vmText), "vm_http_requests_total", path), sumMetric(string(senderText), name), nil
}
