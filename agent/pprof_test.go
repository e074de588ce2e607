package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// deadUpstream is an import URL that refuses connections: the tests here
// look at the agent's own HTTP servers, not at what it ships.
const deadUpstream = "http://127.0.0.1:1/api/v1/import/prometheus"

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The self HTTP address, which a DaemonSet binds to the node's address,
// serves no profiles; nothing serves them unless asked.
func TestPprofOffByDefault(t *testing.T) {
	a, _ := runAgent(t, fixtureConfig(t, deadUpstream, "pprof-off"))
	if code, body := get(t, "http://"+a.Addr()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "procfleet_") {
		t.Fatalf("GET /metrics: %d; the self server must answer for the next check to mean anything", code)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine"} {
		if code, _ := get(t, "http://"+a.Addr()+path); code != http.StatusNotFound {
			t.Errorf("GET %s on listen: %d, want 404", path, code)
		}
	}
	if addr := a.PprofAddr(); addr != "" {
		t.Errorf("pprof listens on %s by default", addr)
	}
}

// debug.pprof_listen serves the profiles on a listener of their own, and
// only there.
func TestPprofOnItsOwnAddress(t *testing.T) {
	cfg := fixtureConfig(t, deadUpstream, "pprof-on")
	cfg.Debug.PprofListen = "127.0.0.1:0"
	a, _ := runAgent(t, cfg)
	pp := "http://" + a.PprofAddr()
	if code, body := get(t, pp+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/ on %s: %d %.200q", a.PprofAddr(), code, body)
	}
	if code, body := get(t, pp+"/debug/pprof/cmdline"); code != http.StatusOK || body == "" {
		t.Errorf("GET /debug/pprof/cmdline: %d %q", code, body)
	}
	if code, _ := get(t, "http://"+a.Addr()+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on listen: %d, want 404 with pprof on its own address", code)
	}
	if code, _ := get(t, pp+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the pprof address: %d, want 404", code)
	}
}

// A pprof address that cannot be bound stops the start with an error that
// names the address and the setting, and releases the self address.
func TestPprofListenTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	self, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	selfAddr := self.Addr().String()
	self.Close()
	cfg := fixtureConfig(t, deadUpstream, "pprof-taken")
	cfg.Listen = selfAddr
	cfg.Debug.PprofListen = taken.Addr().String()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "--pprof-listen") {
		t.Fatalf("Run with the pprof address taken: %v; want an error naming it and --pprof-listen", err)
	}
	ln, err := net.Listen("tcp", selfAddr)
	if err != nil {
		t.Fatalf("the self address is still held after the failed start: %v", err)
	}
	ln.Close()
}
