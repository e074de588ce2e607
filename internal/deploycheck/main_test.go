package deploycheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// procfleetBin is the procfleet binary TestMain builds from this tree.
var procfleetBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "deploycheck-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	procfleetBin = filepath.Join(dir, "procfleet")
	cmd := exec.Command("go", "build", "-o", procfleetBin, "github.com/procfleet/procfleet/cmd/procfleet")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "deploycheck: cannot build procfleet: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// runProcfleet runs the binary to completion and returns its stdout,
// stderr and exit code.
func runProcfleet(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runProcfleetEnv(t, nil, args...)
}

// runProcfleetEnv is runProcfleet with env (KEY=value) added to the
// test's environment.
func runProcfleetEnv(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, procfleetBin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("procfleet %q: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// baseEnv is the test's environment without PROCFLEET_* variables, which
// would turn a standalone agent into a clustered one.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROCFLEET_") {
			env = append(env, kv)
		}
	}
	return env
}

// process is a procfleet process started in the background; its stderr
// (the log) is kept for waitLog and shown when the test fails.
type process struct {
	cmd  *exec.Cmd
	logs testenv.Buffer
	done chan struct{}
}

func (p *process) log() string { return p.logs.String() }

// startProcfleet starts the binary with args, env (KEY=value) added to the
// test's environment, and stops it in t.Cleanup: SIGTERM, then SIGKILL
// after 5 s.
func startProcfleet(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(procfleetBin, args...), done: make(chan struct{})}
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start procfleet %q: %v", args, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("procfleet %q log:\n%s", args, p.log())
		}
	})
	return p
}

// waitLog waits until the log matches re and returns the submatches.
func (p *process) waitLog(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.log()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("procfleet exited (%v) before its log matched %s:\n%s", p.cmd.ProcessState, re, p.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("log did not match %s within %s:\n%s", re, timeout, p.log())
		}
	}
}

// httpGet returns the status code and body of GET url.
func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 100 ms until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address whose port nothing listened on a
// moment ago: an upstream that refuses connections, or a port to bind.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
