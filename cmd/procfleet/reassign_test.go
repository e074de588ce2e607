package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestBudgetReassignedAfterSIGKILL measures the time from an agent's
// SIGKILL to its budget share being given to the others: three agents share
// one upstream; once one is killed, the two left must each get half the
// capacity, within the gossip's detection time and well before the 10 s
// lease expires (the target is at most lease TTL + 1 s).
func TestBudgetReassignedAfterSIGKILL(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=reassign"
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--upstream", vm.ImportURL, "--capacity", "3MiB/s"); code != 0 {
		t.Fatal(stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	listen := map[string]string{}
	procs := map[string]*exec.Cmd{}
	for _, n := range []string{"r1", "r2", "r3"} {
		listen[n] = testenv.FreeAddr(t)
		cmd := exec.Command(binary, "agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", "10s",
			"--procfs-root", fixture, "--listen", listen[n], "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[n] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	budget := func(n string) int64 {
		out, err := tryGet("http://" + listen[n] + "/metrics")
		if err != nil {
			return -1
		}
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "procfleet_limit_bytes_per_second "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return int64(f)
			}
		}
		return -1
	}
	waitBudgets := func(nodes []string, want int64, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			ok := true
			for _, n := range nodes {
				if b := budget(n); b < want-1 || b > want+1 {
					ok = false
				}
			}
			if ok {
				return time.Since(start)
			}
			if time.Since(start) > limit {
				var got []int64
				for _, n := range nodes {
					got = append(got, budget(n))
				}
				t.Fatalf("budgets %v after %s; want %d each", got, limit, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitBudgets([]string{"r1", "r2", "r3"}, 1<<20, 40*time.Second)
	if err := procs["r3"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := waitBudgets([]string{"r1", "r2"}, 3<<20/2, 11*time.Second)
	t.Logf("budget of the killed agent reassigned %s after SIGKILL (lease TTL 10s)", took)
	if took > 8*time.Second {
		t.Errorf("reassignment took %s: the gossip should beat the 10s lease", took)
	}
}
