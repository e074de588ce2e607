package scrape

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/promtext"
	"github.com/procfleet/procfleet/prom/relabel"
)

// loop scrapes one target until it is stopped. Its fields but state are
// owned by its goroutine.
type loop struct {
	m      *Manager
	t      Target
	key    string
	phase  time.Duration
	stop   chan struct{} // closed to stop after the scrape in flight
	done   chan struct{} // closed when the goroutine returned
	parser *promtext.ScrapeParser
	client *client
	setup  error // why the target cannot be scraped at all (credentials, rules)
	limit  int64 // body size limit, bytes
	expect int64 // the bytes the next scrape is expected to write: the last one's
	url    *url.URL

	mu    sync.Mutex // guards state
	state TargetState
}

func newLoop(m *Manager, t Target) *loop {
	l := &loop{m: m, t: t, key: t.Key(), stop: make(chan struct{}), done: make(chan struct{})}
	l.phase = Phase(l.key, t.Interval)
	l.state = TargetState{Key: l.key, Job: t.Job.JobName, Target: t.Address, URL: t.URL().String(), Labels: t.Labels, Health: HealthUnknown}
	l.expect = firstExpect
	l.url = t.URL()
	l.limit = int64(t.Job.BodySizeLimit)
	if l.limit <= 0 {
		l.limit = m.cfg.MaxBodyBytes
	}
	l.setup = l.prepare()
	return l
}

// prepare builds the parser and the client of the target.
func (l *loop) prepare() error {
	job := l.t.Job
	var rules *relabel.Rules
	if len(job.MetricRelabelConfigs) > 0 {
		r, err := relabel.Compile(job.MetricRelabelConfigs)
		if err != nil {
			return fail(reasonConfig, fmt.Errorf("metric_relabel_configs: %w", err))
		}
		rules = r
	}
	sampleLimit := job.SampleLimit
	if sampleLimit == 0 {
		sampleLimit = l.m.cfg.MaxSamples
	}
	p, err := promtext.NewScrapeParser(promtext.ScrapeOptions{
		Target: l.t.Labels, HonorLabels: job.HonorLabels, HonorTimestamps: job.HonorTimestamps,
		Rules: rules, SampleLimit: sampleLimit, LabelLimit: job.LabelLimit,
		FailOnDuplicates: true,
	})
	if err != nil {
		return fail(reasonConfig, err)
	}
	l.parser = p
	creds, err := job.ScrapeAuth.Resolve(l.m.deps.Credentials, l.m.deps.CredentialSource)
	if err != nil {
		return fail(reasonCredential, fmt.Errorf("job %s: %w", job.JobName, err))
	}
	if l.client, err = l.m.clients.get(creds); err != nil {
		return fail(reasonCredential, fmt.Errorf("job %s: %w", job.JobName, err))
	}
	return nil
}

// run scrapes at each of the target's instants until stop is closed or
// ctx is done. An instant missed (a scrape that took longer than the
// interval) is skipped, never made up.
func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	now := l.m.deps.Now()
	next := nextInstant(now, l.t.Interval, l.phase)
	timer := time.NewTimer(next.Sub(now))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.stop:
			return
		case <-timer.C:
		}
		l.scrape(ctx, next)
		now = l.m.deps.Now()
		next = nextInstant(now, l.t.Interval, l.phase)
		timer.Reset(next.Sub(now))
	}
}

// nextInstant returns the first instant after now at phase within the
// interval, on the wall clock.
func nextInstant(now time.Time, interval, phase time.Duration) time.Time {
	base := now.Truncate(interval).Add(phase)
	for !base.After(now) {
		base = base.Add(interval)
	}
	return base.Round(0)
}

// firstExpect is what a target not scraped yet is expected to write: the
// output pool's first capacity.
const firstExpect = 64 << 10

// scrape scrapes the target once, for the instant at, and hands its lines
// (or only its report, when it failed) to the pipeline. It first takes
// the bytes it expects to write from the manager's pending budget, waiting
// while the pipeline is behind; stopped meanwhile, it scrapes nothing.
func (l *loop) scrape(ctx context.Context, at time.Time) {
	held := l.expect
	if !l.m.pending.acquire(ctx, l.stop, held, l.m.pendingWaits.Inc) {
		return
	}
	defer func() { l.m.pending.release(held) }()
	stamp := at.UnixMilli()
	buf := l.m.outputs.get()
	defer l.m.outputs.put(buf)
	start := time.Now()
	out, st, err := l.scrapeBody(ctx, stamp, (*buf)[:0])
	dur := time.Since(start)
	if err != nil {
		out = out[:0]
	}
	out = l.parser0().AppendReport(out, stamp, promtext.ReportSeries{Up: err == nil, Duration: dur, Stats: st})
	*buf = out
	if n := int64(len(out)); n > held {
		l.m.pending.grow(n - held)
		held = n
	}
	l.expect = max(int64(len(out)), 1)
	if derr := l.m.deliver(ctx, out); derr != nil {
		return // ctx is done: the agent stops
	}
	l.m.record(l, at, dur, st, err)
}

// parser0 returns the parser, or one without options for a target whose
// parser could not be built, to write its report.
func (l *loop) parser0() *promtext.ScrapeParser {
	if l.parser != nil {
		return l.parser
	}
	p, err := promtext.NewScrapeParser(promtext.ScrapeOptions{Target: l.t.Labels})
	if err != nil {
		// Labels VictoriaMetrics would not take: job and instance only.
		p, err = promtext.NewScrapeParser(promtext.ScrapeOptions{Target: labels.FromStrings(
			JobLabel, l.t.Labels.Get(JobLabel), InstanceLabel, l.t.Labels.Get(InstanceLabel)).WithoutEmpty()})
	}
	if err != nil {
		p, _ = promtext.NewScrapeParser(promtext.ScrapeOptions{})
	}
	l.parser = p
	return p
}

// scrapeBody requests the target and parses its answer into dst.
func (l *loop) scrapeBody(ctx context.Context, stamp int64, dst []byte) ([]byte, promtext.ScrapeStats, error) {
	if l.setup != nil {
		return dst, promtext.ScrapeStats{}, l.setup
	}
	ctx, cancel := context.WithTimeout(ctx, l.t.Timeout)
	defer cancel()
	body, err := open(ctx, l.client, &l.t, l.url, l.limit)
	if err != nil {
		return dst, promtext.ScrapeStats{}, err
	}
	defer body.Close()
	out, st, err := l.parser.Parse(body, stamp, dst)
	if err == nil {
		return out, st, nil
	}
	var re *promtext.ReadError
	var le *promtext.LineError
	switch {
	case errors.As(err, &re) && errors.Is(err, ErrBodySizeLimit):
		err = fail(reasonBodySize, fmt.Errorf("%w: the body has %d bytes or more (body_size_limit or the host's bound)", ErrBodySizeLimit, l.limit))
	case errors.As(err, &re) && errors.Is(err, promtext.ErrCorruptGzip):
		err = fail(reasonFormat, err)
	case errors.As(err, &re):
		err = fail(reasonOf(ctx, reasonHTTP), fmt.Errorf("cannot read the body: %w", err))
	case errors.As(err, &le):
		err = fail(reasonParse, err)
	default:
		err = fail(reasonLimit, err)
	}
	return out, st, err
}
