package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestDev runs `procfleet dev` (what `make run` runs) on free ports: etcd,
// VictoriaMetrics, a bootstrapped cluster and an agent come up, the host's
// data becomes queryable, and Ctrl-C stops everything with exit code 0.
func TestDev(t *testing.T) {
	vmAddr, etcdAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cmd := exec.Command(binary, "dev", "--victoria-metrics", testenv.Bin(t, "victoria-metrics"),
		"--vm-listen", vmAddr, "--etcd-listen", etcdAddr, "--listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--hostname", "dev-host")
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	vm := &testenv.VM{Addr: vmAddr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s, err := vm.TryExport(`node_load1{instance="dev-host",job="procfleet"}`); err == nil && len(s) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no data from procfleet dev within 60s:\n%s", out.String())
		}
		time.Sleep(500 * time.Millisecond)
		_, _ = vm.TryFlush()
	}
	status, stderr, code := run(t, "status", "--etcd", "http://"+etcdAddr, "--cluster", "dev")
	if code != 0 || !strings.Contains(status, "up-1") {
		t.Fatalf("status against dev: exit %d\n%s%s", code, status, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v after Ctrl-C:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("dev did not stop within 30s of Ctrl-C:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "VictoriaMetrics UI:") {
		t.Fatalf("dev did not say where to look:\n%s", out.String())
	}
	// The binary is not on the PATH: the banner names it by its path.
	if !strings.Contains(out.String(), binary+" status --etcd http://"+etcdAddr+" --cluster dev") {
		t.Fatalf("dev's banner does not say how to run status with this binary (%s):\n%s", binary, out.String())
	}
}
