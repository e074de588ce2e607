package scrape

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/prom/promtext"
)

// Manager runs the scrape loops of the targets it is given. New starts
// nothing; Run runs the loops until its context is done. Apply and
// Targets are safe for concurrent use, before, during and after Run.
type Manager struct {
	cfg     Config
	deps    Deps
	clients clients
	outputs outputPool
	pending *budget

	wake chan struct{} // a new target set waits in want

	mu    sync.Mutex
	want  []Target         // the last set given to Apply, nil before
	loops map[string]*loop // running, by key; owned by Run, read by Targets under mu

	targets   *metrics.Gauge
	scrapes   *metrics.Counter
	samples   *metrics.Counter
	bytes     *metrics.Counter
	dropped   map[string]*metrics.Counter
	failures  map[string]*metrics.Counter
	durations *metrics.FloatCounter
	// pendingWaits counts scrapes that waited for the pending budget.
	pendingWaits *metrics.Counter
}

// New returns a Manager with no target.
func New(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.check(); err != nil {
		return nil, err
	}
	if cfg.MaxPendingBytes == 0 {
		cfg.MaxPendingBytes = DefaultConfig().MaxPendingBytes
	}
	m := &Manager{cfg: cfg, deps: deps, clients: clients{rt: deps.Transport},
		pending: newBudget(cfg.MaxPendingBytes),
		wake:    make(chan struct{}, 1), loops: map[string]*loop{}}
	set := deps.Metrics
	set.NewGauge(`procfleet_scrape_pending_bytes`, func() float64 { return float64(m.pending.inUse()) })
	m.pendingWaits = set.NewCounter(`procfleet_scrape_pending_waits_total`)
	m.targets = set.NewGauge(`procfleet_scrape_targets`, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.loops))
	})
	m.scrapes = set.NewCounter(`procfleet_scrape_scrapes_total`)
	m.samples = set.NewCounter(`procfleet_scrape_samples_total`)
	m.bytes = set.NewCounter(`procfleet_scrape_body_bytes_total`)
	m.durations = set.NewFloatCounter(`procfleet_scrape_duration_seconds_total`)
	m.dropped = map[string]*metrics.Counter{
		"duplicate":     set.NewCounter(`procfleet_scrape_samples_dropped_total{reason="duplicate"}`),
		"out_of_bounds": set.NewCounter(`procfleet_scrape_samples_dropped_total{reason="out_of_bounds"}`),
	}
	m.failures = map[string]*metrics.Counter{}
	for _, r := range []string{reasonHTTP, reasonTimeout, reasonBodySize, reasonLimit, reasonParse, reasonCredential, reasonFormat, reasonConfig} {
		m.failures[r] = set.NewCounter(`procfleet_scrape_failures_total{reason="` + r + `"}`)
	}
	return m, nil
}

// Apply makes targets the set to scrape: targets not scraped yet start
// at their next instant, targets no longer in the set stop after their
// scrape in flight, and a target whose job's scrape settings changed
// (limits, honor_*, metric_relabel_configs, credentials) restarts; the
// others go on undisturbed. Targets are told apart by Target.Key; of two
// with the same key the last counts. Apply does not block: Run applies
// the set.
func (m *Manager) Apply(targets []Target) {
	m.mu.Lock()
	m.want = append(make([]Target, 0, len(targets)), targets...)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run runs the scrape loops until ctx is done, then stops them (a scrape
// in flight is cancelled) and returns once every loop returned.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		m.mu.Lock()
		loops := m.loops
		m.loops = map[string]*loop{}
		m.mu.Unlock()
		for _, l := range loops {
			close(l.stop)
		}
		wg.Wait()
		m.clients.closeIdle()
	}()
	m.reconcile(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
			m.reconcile(ctx, &wg)
		}
	}
}

// reconcile starts, stops and restarts loops to match the wanted set.
func (m *Manager) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	m.mu.Lock()
	want := m.want
	m.mu.Unlock()
	if want == nil {
		return
	}
	next := make(map[string]Target, len(want))
	for _, t := range want {
		if t.Job == nil {
			m.deps.Logger.Warn("a target without a job is not scraped", "target", t.Address)
			continue
		}
		next[t.Key()] = t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, l := range m.loops {
		if t, ok := next[key]; !ok || !sameSettings(l.t.Job, t.Job) || l.t.Interval != t.Interval || l.t.Timeout != t.Timeout {
			close(l.stop)
			delete(m.loops, key)
		}
	}
	for key, t := range next {
		if _, ok := m.loops[key]; ok {
			continue
		}
		l := newLoop(m, t)
		m.loops[key] = l
		wg.Go(func() { l.run(ctx) })
	}
}

// Targets returns the state of every target scraped, in no order.
func (m *Manager) Targets() []TargetState {
	m.mu.Lock()
	loops := make([]*loop, 0, len(m.loops))
	for _, l := range m.loops {
		loops = append(loops, l)
	}
	m.mu.Unlock()
	out := make([]TargetState, 0, len(loops))
	for _, l := range loops {
		l.mu.Lock()
		out = append(out, l.state)
		l.mu.Unlock()
	}
	return out
}

// record keeps the outcome of a scrape of l made for the instant at.
func (m *Manager) record(l *loop, at time.Time, dur time.Duration, st promtext.ScrapeStats, err error) {
	m.scrapes.Inc()
	m.durations.Add(dur.Seconds())
	m.bytes.Add(int(st.Bytes))
	m.samples.Add(st.Written)
	m.dropped["duplicate"].Add(st.Duplicates)
	m.dropped["out_of_bounds"].Add(st.OutOfBounds)
	l.mu.Lock()
	prev := l.state
	l.state.LastScrape, l.state.Duration = at, dur
	l.state.Samples, l.state.SamplesPostRelabel = st.Scraped, st.PostRelabel
	l.state.Health, l.state.LastError, l.state.LastWarning = HealthUp, "", warning(st)
	if err != nil {
		l.state.Health, l.state.LastError, l.state.LastWarning = HealthDown, err.Error(), ""
	}
	l.mu.Unlock()
	if err == nil {
		if prev.Health == HealthDown {
			m.deps.Logger.Info("target up again", "job", l.t.Job.JobName, "target", l.t.Address)
		}
		return
	}
	var f *failure
	reason := reasonHTTP
	if errors.As(err, &f) {
		reason = f.reason
	}
	m.failures[reason].Inc()
	if prev.Health != HealthDown || prev.LastError != err.Error() {
		m.deps.Logger.Warn("scrape failed", "job", l.t.Job.JobName, "target", l.t.Address, "err", err)
	}
}

// warning describes what a successful scrape dropped.
func warning(st promtext.ScrapeStats) string {
	var parts []string
	if st.Duplicates > 0 {
		parts = append(parts, fmt.Sprintf("%d duplicate samples dropped (a series given twice without a timestamp)", st.Duplicates))
	}
	if st.OutOfBounds > 0 {
		parts = append(parts, fmt.Sprintf("%d samples dropped for timestamps more than 10 minutes ahead or before 1970-01-25", st.OutOfBounds))
	}
	return strings.Join(parts, "; ")
}

// deliver writes out, whole lines, into buffers of the pool and sends them
// to the sink, then tells a batching sink that they may leave.
func (m *Manager) deliver(ctx context.Context, out []byte) error {
	for len(out) > 0 {
		b, err := m.deps.Pool.Get(ctx)
		if err != nil {
			return err
		}
		n := cutLines(out, emit.BufferSize-emit.FlushMargin)
		b.B = append(b.B[:0], out[:n]...)
		out = out[n:]
		if err := m.deps.Sink.Send(ctx, b); err != nil {
			return err
		}
	}
	if f, ok := m.deps.Sink.(emit.Flusher); ok {
		return f.Idle(ctx)
	}
	return nil
}

// cutLines returns the length of the longest run of whole lines of out
// within max bytes, or of the first line when it alone is longer.
func cutLines(out []byte, max int) int {
	if len(out) <= max {
		return len(out)
	}
	for i := max - 1; i >= 0; i-- {
		if out[i] == '\n' {
			return i + 1
		}
	}
	for i := max; i < len(out); i++ {
		if out[i] == '\n' {
			return i + 1
		}
	}
	return len(out)
}

// outputPool keeps the buffers scrapes write their lines into until they
// are delivered. Buffers larger than maxPooledOutput are not kept.
type outputPool struct{ p sync.Pool }

const maxPooledOutput = 4 << 20

func (o *outputPool) get() *[]byte {
	if b, ok := o.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (o *outputPool) put(b *[]byte) {
	if cap(*b) > maxPooledOutput {
		return
	}
	*b = (*b)[:0]
	o.p.Put(b)
}
