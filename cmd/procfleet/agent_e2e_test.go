package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestAgentBinarySIGTERM runs the agent binary as a service manager would,
// against the real VictoriaMetrics and the live /proc, stops it with
// SIGTERM, and checks that it exits 0 and that what it read arrived.
func TestAgentBinarySIGTERM(t *testing.T) {
	vm := testenv.StartVM(t)
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	writeFile(t, cfg, `
hostname: e2e-host
listen: 127.0.0.1:0
compress: {flush_age: 10s}   # only the stop flushes: proves the graceful drain
ship:
  upstreams: [`+vm.ImportURL+`]
`)
	cmd := exec.Command(binary, "agent", "--config", cfg, "--log-level", "debug")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("agent did not exit within 20s of SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "agent stopped") {
		t.Errorf("log lacks the stop line:\n%s", stderr.String())
	}
	vm.Flush(t)
	// Samples wanted per series: context switches change every second;
	// the others may not change in 2.5s and are written once.
	for q, want := range map[string]int{
		`node_context_switches_total{instance="e2e-host",job="procfleet"}`: 2,
		`node_memory_MemTotal_bytes{instance="e2e-host"}`:                  1,
		`proc_pid_info{instance="e2e-host",pid="1"}`:                       1,
	} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := vm.TryExport(q)
			if err == nil && len(s) > 0 && len(s[0].Values) >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in VictoriaMetrics with %d or more samples after the stop (err %v, %d series)", q, want, err, len(s))
			}
			time.Sleep(200 * time.Millisecond)
			vm.Flush(t)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := writeFileErr(path, content); err != nil {
		t.Fatal(err)
	}
}
