package ship

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// post is one request an upstream received.
type post struct {
	at     time.Time
	path   string
	query  url.Values
	header http.Header
	body   string // decompressed
}

// upstream is an httptest server that records the batches it takes. Its
// fault func, when set, may answer a request itself (returning true); n
// counts the requests of that method from 1.
type upstream struct {
	srv *httptest.Server

	mu    sync.Mutex
	fault func(n int, w http.ResponseWriter, r *http.Request) bool
	posts []post
	nPost int
	nGet  int
}

func newUpstream(t *testing.T, fault func(n int, w http.ResponseWriter, r *http.Request) bool) *upstream {
	t.Helper()
	u := &upstream{fault: fault}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

// URL returns the import URL of u.
func (u *upstream) URL() string { return u.srv.URL + "/api/v1/import/prometheus" }

func (u *upstream) setFault(f func(n int, w http.ResponseWriter, r *http.Request) bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fault = f
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	n := 0
	if r.Method == http.MethodPost {
		u.nPost++
		n = u.nPost
	} else {
		u.nGet++
		n = u.nGet
	}
	fault := u.fault
	u.mu.Unlock()
	if fault != nil && fault(n, w, r) {
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/health" {
		_, _ = io.WriteString(w, "OK")
		return
	}
	p := post{at: time.Now(), path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, "cannot read gzip: "+err.Error(), http.StatusBadRequest)
		return
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		http.Error(w, "cannot read gzip: "+err.Error(), http.StatusBadRequest)
		return
	}
	p.body = string(b)
	u.mu.Lock()
	u.posts = append(u.posts, p)
	u.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (u *upstream) received() []post {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]post(nil), u.posts...)
}

func (u *upstream) counts() (posts, gets int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.nPost, u.nGet
}

func bodies(ps []post) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.body
	}
	return out
}

// testConfig returns a config with short timeouts and backoffs.
func testConfig(urls ...string) config.Ship {
	c := config.DefaultShip()
	c.Upstreams = urls
	c.Timeouts = config.ShipTimeouts{
		Connect:  config.Duration(time.Second),
		Send:     config.Duration(2 * time.Second),
		Response: config.Duration(2 * time.Second),
	}
	c.Retry = config.ShipRetry{
		MinBackoff: config.Duration(10 * time.Millisecond),
		MaxBackoff: config.Duration(50 * time.Millisecond),
	}
	c.ProbeInterval = config.Duration(50 * time.Millisecond)
	c.QueueBatches = 16
	c.DrainTimeout = config.Duration(2 * time.Second)
	return c
}

func batch(t testing.TB, s string) *Batch {
	t.Helper()
	return &Batch{Body: testenv.Gzip(t, s), Samples: strings.Count(s, "\n"), Created: time.Now()}
}

func line(i int) string { return fmt.Sprintf("m{i=\"%d\"} %d 1700000000000\n", i, i) }

// testWriter sends log lines to t.Log, shown when the test fails or -v.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newShipper builds a shipper; deps.Metrics defaults to a fresh set and
// deps.Logger to one that writes to t.Log.
func newShipper(t testing.TB, cfg config.Ship, deps Deps) *Shipper {
	t.Helper()
	if deps.Metrics == nil {
		deps.Metrics = metrics.NewSet()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// run starts s.Run and returns a stop func that cancels it and returns
// Run's error; the cleanup stops it too.
func run(t *testing.T, s *Shipper) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop = testenv.StopOnce(cancel, done, "the shipper's Run", 20*time.Second)
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of the series named exactly name in set,
// or -1 when absent.
func metricValue(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	return testenv.MetricValue(t, set, name)
}

func stateOf(t *testing.T, s *Shipper, label string) EndpointState {
	t.Helper()
	for _, st := range s.State() {
		if st.URL == label {
			return st
		}
	}
	t.Fatalf("no endpoint %s in %+v", label, s.State())
	return EndpointState{}
}
