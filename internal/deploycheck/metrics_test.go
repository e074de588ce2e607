package deploycheck

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exposed are the metric names that real procfleet processes expose.
type exposed struct {
	// names are the sample names: an agent's and a relay's /metrics
	// (procfleet_*, which they also push) and a scan's proc_pid_*.
	names map[string]bool
	// threaded are the proc_pid_* names that per-thread series share
	// (label tid) when generators.process.threads is on.
	threaded map[string]bool
}

// has reports whether name is exposed. A histogram's or summary's _bucket,
// _sum or _count is taken when the family exposes any of them: buckets
// appear only once they hold observations.
func (e exposed) has(name string) bool {
	if e.names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return e.names[base+"_count"] || e.names[base+"_sum"]
		}
	}
	return false
}

// lazyNames are series that the processes create on first use, which the
// gathering waits for: sends and flushes (agent), an import (relay).
var lazyNames = map[string][]string{
	"agent": {"procfleet_ship_send_seconds_count", "procfleet_compress_batch_bytes_count", "procfleet_spool_records"},
	"relay": {"procfleet_relay_import_seconds_count", "procfleet_spool_records"},
}

// gatherExposed runs an agent on the fixture tree with a spool and an
// upstream that refuses connections, a relay likewise, and scans of the
// fixtures without and with per-thread series, and collects the names.
func gatherExposed(t *testing.T) exposed {
	t.Helper()
	root := repoRoot(t)
	proc := filepath.Join(root, "testdata", "fixtures", "proc")
	sys := filepath.Join(root, "testdata", "fixtures", "sys")
	upstream := "http://" + freeAddr(t) + "/api/v1/import/prometheus"
	listen := regexp.MustCompile(`listen=(\S+)`)

	agent := startProcfleet(t, nil, "agent", "--procfs-root", proc, "--sysfs-root", sys,
		"--upstream", upstream, "--listen", "127.0.0.1:0", "--spool-dir", t.TempDir())
	relay := startProcfleet(t, nil, "relay", "--data-dir", t.TempDir(),
		"--upstream", upstream, "--listen", "127.0.0.1:0")
	agentAddr := agent.waitLog(t, regexp.MustCompile(`msg="agent started".*`+listen.String()), 30*time.Second)[1]
	relayAddr := relay.waitLog(t, regexp.MustCompile(`msg="relay listening".*`+listen.String()), 30*time.Second)[1]
	importOne(t, relayAddr)

	e := exposed{names: map[string]bool{}, threaded: map[string]bool{}}
	for n := range scrapeUntil(t, agentAddr, lazyNames["agent"]) {
		e.names[n] = true
	}
	for n := range scrapeUntil(t, relayAddr, lazyNames["relay"]) {
		e.names[n] = true
	}
	out, errOut, code := runProcfleet(t, "scan", "--procfs-root", proc, "--sysfs-root", sys)
	if code != 0 {
		t.Fatalf("scan: exit %d: %s", code, errOut)
	}
	for n := range sampleNames(out) {
		e.names[n] = true
	}
	cfg := filepath.Join(t.TempDir(), "threads.yaml")
	if err := os.WriteFile(cfg, []byte("generators:\n  process: {enabled: true, interval: 1s, threads: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runProcfleet(t, "scan", "--procfs-root", proc, "--sysfs-root", sys, "--config", cfg)
	if code != 0 {
		t.Fatalf("scan with threads: exit %d: %s", code, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if name, labels, ok := strings.Cut(line, "{"); ok && strings.Contains(labels, `tid="`) {
			e.threaded[name] = true
		}
	}
	if len(e.threaded) == 0 {
		t.Fatal("scan with threads: no series with a tid label; the fixtures or the config key changed")
	}
	return e
}

// importOne sends the relay at addr one sample, once it is ready, so that
// its import metrics exist.
func importOne(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 30*time.Second, "relay /readyz", func() error {
		code, body, err := httpGet("http://" + addr + "/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d: %s", code, body)
		}
		return err
	})
	resp, err := http.Post("http://"+addr+"/api/v1/import/prometheus", "text/plain", strings.NewReader("deploycheck_probe 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("import into the relay: status %d, want 204", resp.StatusCode)
	}
}

// scrapeUntil scrapes http://addr/metrics until it has every name of
// want, and returns the names of that page.
func scrapeUntil(t *testing.T, addr string, want []string) map[string]bool {
	t.Helper()
	var names map[string]bool
	waitFor(t, 30*time.Second, addr+"/metrics with "+strings.Join(want, ", "), func() error {
		code, body, err := httpGet("http://" + addr + "/metrics")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("status %d: %v", code, err)
		}
		names = sampleNames(body)
		for _, n := range want {
			if !names[n] {
				return fmt.Errorf("no %s yet", n)
			}
		}
		return nil
	})
	return names
}

// sampleNames returns the metric names of the samples of a Prometheus
// text exposition.
func sampleNames(text string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
