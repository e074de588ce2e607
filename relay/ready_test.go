package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/config"
)

// get returns the status and body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// While the log is being recovered the relay is alive (/healthz 200) but
// not ready: /readyz and /health say 503 and why, imports get 503 and
// store nothing. Once recovered, all three answer as usual. A log that
// cannot be opened makes Run fail, naming wal.dir.
func TestNotReadyWhileRecovering(t *testing.T) {
	release := make(chan struct{})
	fail := make(chan error, 1)
	defer func(f func(config.Spool, *metrics.Set, *slog.Logger) (*spool.Log, error)) { openWAL = f }(openWAL)
	real := openWAL
	openWAL = func(c config.Spool, set *metrics.Set, l *slog.Logger) (*spool.Log, error) {
		<-release
		select {
		case err := <-fail:
			return nil, err
		default:
		}
		return real(c, set, l)
	}
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	base := "http://" + r.Addr()
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while recovering = %d; want 200", code)
	}
	for _, p := range []string{"/readyz", "/health"} {
		if code, body := get(t, base+p); code != http.StatusServiceUnavailable || !strings.Contains(body, "recovering the write-ahead log") {
			t.Fatalf("%s while recovering = %d %q; want 503 naming the recovery", p, code, body)
		}
	}
	if code, msg := push(t, nil, base+"/api/v1/import/prometheus", []byte("early 1\n")); code != http.StatusServiceUnavailable || !strings.Contains(msg, "recovering") {
		t.Fatalf("import while recovering = %d %q; want 503", code, msg)
	}
	close(release)
	select {
	case <-r.Recovered():
	case <-time.After(10 * time.Second):
		t.Fatal("not recovered 10s after the log was released")
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after recovery = %d; want 200", code)
	}
	if code, msg := push(t, nil, base+"/api/v1/import/prometheus", []byte("late 1\n")); code != http.StatusNoContent {
		t.Fatalf("import after recovery = %d %q; want 204", code, msg)
	}
	if n := r.WAL().Len(); n != 1 {
		t.Fatalf("log holds %d records; want only the import made after recovery", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A log that cannot be opened: 503 with the cause, then Run fails.
	release, fail = make(chan struct{}), make(chan error, 1)
	fail <- errors.New("permission denied")
	r, err = New(testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus"), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- r.Run(context.Background()) }()
	<-r.Ready()
	close(release)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "wal.dir: permission denied") {
		t.Fatalf("Run with a log that cannot be opened: %v; want wal.dir: permission denied", err)
	}
}
