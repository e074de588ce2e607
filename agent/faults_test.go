package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// waitFor polls cond every 100ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgentFailsOverFromBrokenUpstream gives the agent a failing upstream
// first and the real VictoriaMetrics second: every batch must reach
// VictoriaMetrics, the broken one must be marked unhealthy and probed, not
// hammered.
func TestAgentFailsOverFromBrokenUpstream(t *testing.T) {
	vm := testenv.StartVM(t)
	var hits atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	cfg := fixtureConfig(t, vm.ImportURL, "failover-host")
	cfg.Ship.Upstreams = []string{broken.URL + "/api/v1/import/prometheus", vm.ImportURL}
	cfg.Ship.ProbeInterval = config.Duration(time.Second)
	a, _ := runAgent(t, cfg)

	waitFor(t, 20*time.Second, "data in VictoriaMetrics", func() bool {
		vm.Flush(t)
		s, err := vm.TryExport(`node_load1{instance="failover-host"}`)
		return err == nil && len(s) == 1 && len(s[0].Values) >= 4
	})
	metrics := httpGet(t, "http://"+a.Addr()+"/metrics")
	want := `procfleet_ship_endpoint_healthy{endpoint="` + broken.URL + `/api/v1/import/prometheus"} 0`
	if !strings.Contains(metrics, want) {
		t.Errorf("self-metrics lack %s", want)
	}
	// Batches go every ~1s: a few sends and one probe a second at most hit
	// the broken upstream, never a tight loop.
	time.Sleep(2 * time.Second)
	before := hits.Load()
	time.Sleep(3 * time.Second)
	if n := hits.Load() - before; n > 8 {
		t.Errorf("broken upstream got %d requests in 3s; the agent spins", n)
	}
}

// TestAgentSurvivesMalformedProc breaks one /proc file under a running
// agent: the other generators keep shipping, the error is counted, and the
// generator recovers when the file does.
func TestAgentSurvivesMalformedProc(t *testing.T) {
	vm := testenv.StartVM(t)
	root := t.TempDir()
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc")
	for _, f := range []string{"stat", "meminfo", "loadavg"} {
		testenv.CopyFile(t, filepath.Join(src, f), filepath.Join(root, f), 0o644)
	}
	cfg := fixtureConfig(t, vm.ImportURL, "bad-proc-host")
	cfg.ProcfsRoot = root
	if err := os.WriteFile(filepath.Join(root, "meminfo"), []byte("MemTotal: lots kB\n\x00\xff garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := runAgent(t, cfg)
	waitFor(t, 20*time.Second, "node_load1 while meminfo is broken", func() bool {
		vm.Flush(t)
		s, err := vm.TryExport(`node_load1{instance="bad-proc-host"}`)
		return err == nil && len(s) == 1
	})
	waitFor(t, 10*time.Second, "meminfo errors counted", func() bool {
		m := httpGet(t, "http://"+a.Addr()+"/metrics")
		return strings.Contains(m, `procfleet_generator_errors_total{generator="meminfo"}`) &&
			!strings.Contains(m, `procfleet_generator_errors_total{generator="meminfo"} 0`)
	})
	testenv.CopyFile(t, filepath.Join(src, "meminfo"), filepath.Join(root, "meminfo"), 0o644)
	waitFor(t, 20*time.Second, "node_memory_MemTotal_bytes after the file recovered", func() bool {
		vm.Flush(t)
		s, err := vm.TryExport(`node_memory_MemTotal_bytes{instance="bad-proc-host"}`)
		return err == nil && len(s) == 1
	})
}
