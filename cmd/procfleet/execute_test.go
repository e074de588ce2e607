package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The agent runs after cobra returned: no cobra frame is on any
// goroutine's stack while it runs (each garbage collection walks every
// frame), the main goroutine runs it from execute, and a failure of the
// run still ends the process with its message and exit code.
func TestAgentRunsOutsideCobra(t *testing.T) {
	port := startPprofAgent(t, "127.0.0.1:0")
	resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	stacks := string(b)
	if !strings.Contains(stacks, "main.execute(") || !strings.Contains(stacks, "agent.(*Agent).Run(") {
		t.Fatalf("the agent does not run from main.execute:\n%s", stacks)
	}
	if strings.Contains(stacks, "spf13/cobra") {
		t.Fatalf("cobra's frames are on a stack while the agent runs:\n%s", stacks)
	}

	// A run that fails after cobra returned: the port is taken.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, errOut, code := run(t, "agent", "--upstream", "http://127.0.0.1:1/x", "--listen", ln.Addr().String(),
		"--procfs-root", "../../testdata/fixtures/proc", "--sysfs-root", "../../testdata/fixtures/sys")
	if code != 1 || !strings.Contains(errOut, "procfleet: cannot listen on "+ln.Addr().String()) {
		t.Fatalf("agent on a taken port: exit %d, stderr %q; want 1 and the listen error", code, errOut)
	}
}

// notifyContext's context is done at the signal, and stop ends it too.
func TestNotifyContext(t *testing.T) {
	ctx, stop := notifyContext(syscall.SIGUSR1)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not done 10s after SIGUSR1")
	}
	stop()
	ctx2, stop2 := notifyContext(syscall.SIGUSR2)
	stop2()
	if ctx2.Err() == nil {
		t.Fatal("context not done after stop")
	}
}
