package scrape

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
	"github.com/procfleet/procfleet/prom/labels"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// sink collects what the scraper writes, as the agent's compressor would
// take it, and counts the scrapes it is told of (Idle).
type sink struct {
	pool *emit.Pool
	mu   sync.Mutex
	buf  bytes.Buffer
	idle int
}

func (s *sink) Send(_ context.Context, b *emit.Buffer) error {
	s.mu.Lock()
	s.buf.Write(b.B)
	s.mu.Unlock()
	s.pool.Put(b)
	return nil
}

func (s *sink) Idle(context.Context) error {
	s.mu.Lock()
	s.idle++
	s.mu.Unlock()
	return nil
}

// samples returns the samples written so far.
func (s *sink) samples(t testing.TB) []testenv.Sample {
	t.Helper()
	s.mu.Lock()
	data := bytes.Clone(s.buf.Bytes())
	s.mu.Unlock()
	out, err := testenv.ParseSamples(data)
	if err != nil {
		t.Fatalf("the scraper wrote lines that do not parse: %v", err)
	}
	return out
}

// reports returns the samples of the series named name whose instance
// is instance, in the order written.
func (s *sink) reports(t testing.TB, name, instance string) []testenv.Sample {
	t.Helper()
	var out []testenv.Sample
	for _, smp := range s.samples(t) {
		if smp.Name == name && smp.Labels["instance"] == instance {
			out = append(out, smp)
		}
	}
	return out
}

// harness is a Manager running with a sink, stopped at the test's end.
type harness struct {
	m    *Manager
	sink *sink
	set  *metrics.Set
}

func startManager(t testing.TB, cfg Config, deps Deps) *harness {
	t.Helper()
	pool := emit.NewPool(16)
	s := &sink{pool: pool}
	deps.Pool, deps.Sink = pool, s
	if deps.Metrics == nil {
		deps.Metrics = metrics.NewSet()
	}
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	runManager(t, m)
	return &harness{m: m, sink: s, set: deps.Metrics}
}

// runManager runs m until the test's end.
func runManager(t testing.TB, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// testJob returns a job with Prometheus' defaults and interval.
func testJob(name string, interval time.Duration) *config.ScrapeConfig {
	j := config.DefaultScrapeConfig()
	j.JobName = name
	j.ScrapeInterval = config.PromDuration(interval)
	j.ScrapeTimeout = config.PromDuration(interval)
	return &j
}

// target returns job's target for the URL u (http://host:port/path?query),
// made as discovery would make it.
func target(t testing.TB, job *config.ScrapeConfig, u string, extra ...string) Target {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ls := labels.FromStrings(append([]string{AddressLabel, pu.Host}, extra...)...)
	ls = DiscoveredLabels(job, ls)
	b := labels.NewBuilder(ls)
	b.Set(SchemeLabel, pu.Scheme)
	if pu.Path != "" {
		b.Set(MetricsPathLabel, pu.Path)
	}
	for k, vs := range pu.Query() {
		b.Set(ParamLabelPrefix+k, vs[0])
	}
	tg, err := TargetFromLabels(job, b.Labels(nil))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// state returns the state of the target at address addr.
func (h *harness) state(addr string) (TargetState, bool) {
	for _, s := range h.m.Targets() {
		if s.Target == addr {
			return s, true
		}
	}
	return TargetState{}, false
}

// metric returns the value of a self-metric, 0 if it is not there.
func (h *harness) metric(name string) float64 {
	var b bytes.Buffer
	h.set.WritePrometheus(&b)
	v, _ := testenv.SumMetric(b.String(), name)
	return v
}

func hostOf(u string) string {
	pu, _ := url.Parse(u)
	return pu.Host
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
