package main

import (
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// --pprof-listen takes a loopback address only, unless --pprof-allow-remote
// says otherwise; the refusal names both.
func TestAgentPprofFlags(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, stderr, code := run(t, "agent", "--upstream", "http://127.0.0.1:1/x", "--listen", "127.0.0.1:0", "--pprof-listen", addr)
		if code == 0 || !strings.Contains(stderr, "is not a loopback address") || !strings.Contains(stderr, "--pprof-allow-remote") {
			t.Errorf("--pprof-listen %s: exit %d, stderr %q; want a refusal that names --pprof-allow-remote", addr, code, stderr)
		}
	}

	port := startPprofAgent(t, "0.0.0.0:0", "--pprof-allow-remote")
	resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pprof/ on the allowed remote address: %d", resp.StatusCode)
	}
}

// startPprofAgent starts an agent on the fixtures with --pprof-listen
// listen (and extra flags), stopped at the test's end, and returns the
// port its pprof server listens on, read from its start line.
func startPprofAgent(t *testing.T, listen string, extra ...string) string {
	t.Helper()
	args := append([]string{"agent", "--upstream", "http://127.0.0.1:1/x", "--listen", "127.0.0.1:0",
		"--procfs-root", "../../testdata/fixtures/proc", "--sysfs-root", "../../testdata/fixtures/sys",
		"--pprof-listen", listen}, extra...)
	cmd := exec.Command(binary, args...)
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	started := regexp.MustCompile(`msg="agent started".* pprof=\S+:(\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := started.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start line with the pprof address in 20s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
