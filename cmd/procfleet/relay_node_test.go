package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// waitRelayInstance waits until the relay's own metrics, which it stores
// in its log every 10 s and forwards, are in vm, and checks that every
// procfleet_relay_* series there carries instance=node.
func waitRelayInstance(t *testing.T, vm *testenv.VM, node string) {
	t.Helper()
	testenv.Eventually(t, 40*time.Second, 300*time.Millisecond, "the relay's own metrics with instance="+node, func() error {
		vm.Flush(t)
		series, err := vm.TryExport(`{__name__=~"procfleet_relay_.*",job="procfleet"}`)
		if err != nil {
			return err
		}
		if len(series) == 0 {
			return fmt.Errorf("no procfleet_relay_* series yet")
		}
		for _, s := range series {
			if s.Metric["instance"] != node {
				t.Fatalf("relay self-metric %s has instance %q; want the node name %q", s.Key(), s.Metric["instance"], node)
			}
		}
		return nil
	})
}

// TestRelayNodeNamesItsMetrics checks that --node names a standalone
// relay's node: its own metrics reach VictoriaMetrics with instance set to
// the node name, not the host name.
func TestRelayNodeNamesItsMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	dir := filepath.Join(t.TempDir(), "wal")
	addr := testenv.FreeAddr(t)
	r := newBinProc(t, "relay", addr, func() []string {
		return []string{"relay", "--node", "r1", "--listen", addr, "--data-dir", dir, "--upstream", vm.ImportURL, "--log-level", "warn"}
	})
	r.start()
	waitRelayInstance(t, vm, "r1")
	r.running()

	// A bad name is refused before the relay listens (on addr, which the
	// first relay holds: were the name taken, this one would exit too).
	_, stderr, code := run(t, "relay", "--node", "r 1", "--listen", addr, "--data-dir", t.TempDir(), "--upstream", vm.ImportURL)
	if code != 2 || !strings.Contains(stderr, `--node: node name "r 1" is not accepted`) {
		t.Errorf("relay --node 'r 1': exit %d, stderr %q", code, stderr)
	}
}
