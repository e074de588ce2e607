package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binary is procfleet built once for the tests that run it as users do.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "procfleet-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "procfleet")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build procfleet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs procfleet with args and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestAgentRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	f := func(doc, want string) {
		t.Helper()
		p := filepath.Join(dir, "agent.yaml")
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run(t, "agent", "--config", p)
		if code != 2 {
			t.Fatalf("bad config %q: exit %d, want 2", doc, code)
		}
		if !strings.Contains(stderr, want) {
			t.Fatalf("bad config %q: stderr %q lacks %q", doc, stderr, want)
		}
	}
	f("ship: {upstreams: [http://127.0.0.1:1/x]}\ngenerators: {stat: {interval: 5ms}}\n", "generators.stat.interval: 5ms is not accepted")
	f("shipp: {}\n", "line 1: unknown key shipp")
	f("job: procfleet\n", "ship.upstreams: empty")
	_, stderr, code := run(t, "agent", "--config", filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("missing config file: exit %d, stderr %q", code, stderr)
	}
}

func TestScanFixture(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "fixtures")
	stdout, stderr, code := run(t, "scan", "--procfs-root", filepath.Join(root, "proc"),
		"--sysfs-root", filepath.Join(root, "sys"), "--hostname", "fixture-host")
	if code != 0 {
		t.Fatalf("scan exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`node_load1{instance="fixture-host",job="procfleet"} `,
		`node_cpu_seconds_total{instance="fixture-host",job="procfleet",cpu="0",mode="user"} `,
		`proc_pid_info{instance="fixture-host",job="procfleet",pid="`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("scan output lacks %q", want)
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i-1] > lines[i] {
			t.Fatalf("scan output not sorted at line %d", i+1)
		}
	}
}

func TestScanBadRoot(t *testing.T) {
	_, stderr, code := run(t, "scan", "--procfs-root", t.TempDir())
	if code == 0 {
		t.Fatal("scan of an empty directory exited 0")
	}
	if !strings.Contains(stderr, "every generator failed") {
		t.Fatalf("stderr %q does not say what failed", stderr)
	}
}

func writeFileErr(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// newCmd returns an unstarted procfleet command.
func newCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command(binary, args...)
}

// tryGet returns the body of a GET, or an error for a failed request or a
// status other than 200.
func tryGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
