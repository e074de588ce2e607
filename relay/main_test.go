package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// testConfig returns a relay config on a free loopback port with its log
// in a temporary directory and short ship timeouts.
func testConfig(t testing.TB, upstreams ...string) config.Relay {
	t.Helper()
	c := config.DefaultRelay()
	c.Listen = "127.0.0.1:0"
	c.WAL.Dir = t.TempDir()
	c.WAL.SegmentBytes = 1 << 20
	c.WAL.MaxBytes = 0
	c.Ship.Upstreams = upstreams
	c.Ship.Timeouts = config.ShipTimeouts{
		Connect:  config.Duration(time.Second),
		Send:     config.Duration(5 * time.Second),
		Response: config.Duration(5 * time.Second),
	}
	c.Ship.Retry = config.ShipRetry{MinBackoff: config.Duration(20 * time.Millisecond), MaxBackoff: config.Duration(200 * time.Millisecond)}
	c.Ship.ProbeInterval = config.Duration(100 * time.Millisecond)
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// running is a relay started by start.
type running struct {
	*Relay
	url  string // import URL
	base string // scheme://host:port
	stop func() error
}

// start runs a relay for cfg until the test ends and waits until it takes
// imports.
func start(t testing.TB, cfg config.Relay) *running {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if _, ok := t.(*testing.F); ok {
		// A fuzz target's F takes no log lines from other goroutines.
		logger = slog.New(slog.DiscardHandler)
	}
	r, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Recovered():
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("relay not ready after 20s")
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	base := scheme + "://" + r.Addr()
	stop := testenv.StopOnce(cancel, done, "the relay's Run", 30*time.Second)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("relay Run: %v", err)
		}
	})
	return &running{Relay: r, url: base + ImportPath, base: base, stop: stop}
}

// push posts body to url and returns the status and the response body.
func push(t testing.TB, client *http.Client, url string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one series of the relay's self-metrics, -1 when absent.
func (r *running) metric(t testing.TB, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	r.WritePrometheus(&buf)
	for _, l := range strings.Split(buf.String(), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == name {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
