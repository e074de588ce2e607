package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// With log.format: json, the agent and the relay write one JSON object a
// record, each with one component key.
func TestLogJSONOneComponent(t *testing.T) {
	dir := t.TempDir()
	agentCfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, agentCfg, `
listen: 127.0.0.1:0
procfs_root: `+t.TempDir()+`   # empty: the generators fail and the scheduler logs it
ship: {upstreams: ["http://127.0.0.1:1/api/v1/import/prometheus"], drain_timeout: 1s}
spool: {dir: `+filepath.Join(dir, "spool")+`}
log: {format: json}
`)
	relayCfg := filepath.Join(dir, "relay.yaml")
	writeFile(t, relayCfg, `
listen: 127.0.0.1:0
wal: {dir: `+filepath.Join(dir, "wal")+`}
ship: {upstreams: ["http://127.0.0.1:1/api/v1/import/prometheus"], drain_timeout: 1s}
log: {format: json}
`)
	for _, c := range []struct {
		name string
		args []string
		want []string // components that must have logged
	}{
		{"agent", []string{"agent", "--config", agentCfg}, []string{"agent", "scheduler", "ship", "spool"}},
		{"relay", []string{"relay", "--config", relayCfg}, []string{"relay", "wal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(binary, c.args...)
			var stderr testenv.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for !hasComponents(stderr.String(), c.want) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s exited with %v", c.name, err)
			}
			recs, err := testenv.ParseJSONLog([]byte(stderr.String()))
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			for _, r := range recs {
				if comp, ok := r["component"].(string); ok && !slices.Contains(seen, comp) {
					seen = append(seen, comp)
				}
			}
			for _, w := range c.want {
				if !slices.Contains(seen, w) {
					t.Errorf("no record of component %s; components seen: %v\n%s", w, seen, stderr.String())
				}
			}
		})
	}
}

// hasComponents reports whether log, JSON records, holds one of each
// component of want.
func hasComponents(log string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(log, `"component":"`+w+`"`) {
			return false
		}
	}
	return true
}
