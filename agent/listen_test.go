package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestUseListener hands the agent a listener bound in advance, on an
// address its config does not name: Run serves there, /readyz answers 200
// once every part started, and Run closes the listener.
func TestUseListener(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fixtureConfig(t, up.URL, "h")
	cfg.Listen = "127.0.0.1:1" // not used: the listener handed over is
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.UseListener(ln)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	if a.Addr() != ln.Addr().String() {
		t.Errorf("Addr = %s; want the listener's %s", a.Addr(), ln.Addr())
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s; want 200", path, resp.Status)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener handed over is still open after Run")
	}
}
