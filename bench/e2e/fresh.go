package main

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// freshnessSeries are the probed series: each changes about every second
// on any host, so both sides write a sample for it every second (the agent
// writes only changed values between refreshes).
var freshnessSeries = []string{
	`node_context_switches_total`,
	`node_intr_total`,
	`node_cpu_seconds_total{cpu="0",mode="idle"}`,
	`node_memory_MemFree_bytes`,
}

// freshnessMatch returns the export selectors of the probed series of one
// side's instance.
func freshnessMatch(instance string) []string {
	out := make([]string, len(freshnessSeries))
	for i, s := range freshnessSeries {
		lbl := `instance="` + instance + `"`
		if name, rest, ok := strings.Cut(s, "{"); ok {
			out[i] = name + "{" + lbl + "," + rest
		} else {
			out[i] = s + "{" + lbl + "}"
		}
	}
	return out
}

// prober measures freshness: the delay from a sample's timestamp to the
// moment it is first returned by VictoriaMetrics. It polls /api/v1/export
// (raw stored samples, no query cache) every pollInterval and records, for
// each sample timestamp not seen before whose timestamp lies in [from, to],
// the time the poll that first returned it was sent minus the timestamp.
// Samples already present at the first poll are only marked seen: when
// they arrived is unknown.
//
// VictoriaMetrics itself keeps new rows out of search for 2 to 4 s (rows
// wait in per-shard buffers flushed on a 2 s ticker once 2 s old;
// pendingRowsFlushInterval in lib/storage), the same for both sides. With
// flush set, each poll first calls /internal/force_flush, which takes that
// buffer out: what remains is the agents' own delay plus ingestion.
type prober struct {
	vm    *vmServer
	match []string
	flush bool // force_flush before each poll

	mu       sync.Mutex
	from, to time.Time
	seen     map[string]map[int64]bool // series key -> timestamps seen
	latest   map[string]int64          // series key -> newest timestamp seen
	delays   []float64                 // ms
	polls    int
	errs     int
	lastErr  error
}

const pollInterval = 100 * time.Millisecond

func newProber(vm *vmServer, match []string, flush bool) *prober {
	return &prober{vm: vm, match: match, flush: flush, seen: map[string]map[int64]bool{}, latest: map[string]int64{}}
}

// setWindow sets the timestamps whose samples are recorded.
func (p *prober) setWindow(from, to time.Time) {
	p.mu.Lock()
	p.from, p.to = from, to
	p.mu.Unlock()
}

// run polls until ctx ends.
func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *prober) poll(ctx context.Context) {
	sent := time.Now()
	var err error
	if p.flush {
		err = p.vm.flush(ctx)
	}
	var series []exported
	if err == nil {
		series, err = p.vm.export(ctx, p.match, sent.Add(-30*time.Second))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			p.errs++
			p.lastErr = err
		}
		return
	}
	first := p.polls == 0
	p.polls++
	for _, s := range series {
		key := seriesKey(s.Metric)
		ts := p.seen[key]
		if ts == nil {
			ts = map[int64]bool{}
			p.seen[key] = ts
		}
		for _, t := range s.Timestamps {
			if ts[t] {
				continue
			}
			ts[t] = true
			p.latest[key] = max(p.latest[key], t)
			at := time.UnixMilli(t)
			if !first && !p.from.IsZero() && !at.Before(p.from) && !at.After(p.to) {
				p.delays = append(p.delays, float64(sent.Sub(at).Microseconds())/1e3)
			}
		}
	}
}

// caughtUp reports whether every probed series shows a sample at or after
// the window's end: samples of a series arrive in order, so the window's
// samples are then all recorded.
func (p *prober) caughtUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.latest) == 0 {
		return false
	}
	end := p.to.UnixMilli()
	for _, t := range p.latest {
		if t < end {
			return false
		}
	}
	return true
}

// freshness is the summary of one prober.
type freshness struct {
	P50, P99, Max float64 // ms
	N, Series     int
	PollErrors    int
}

func (p *prober) summary() freshness {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := slices.Clone(p.delays)
	slices.Sort(d)
	f := freshness{N: len(d), Series: len(p.seen), PollErrors: p.errs}
	if len(d) > 0 {
		f.P50, f.P99, f.Max = percentile(d, 0.50), percentile(d, 0.99), d[len(d)-1]
	}
	return f
}

// percentile is the nearest-rank q-quantile of sorted d.
func percentile(d []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// seriesKey is a canonical text form of a label set.
func seriesKey(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(',')
	}
	return b.String()
}
