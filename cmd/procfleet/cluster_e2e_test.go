package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestClusteredAgents runs three agent processes against embedded etcd and
// two real VictoriaMetrics: they agree on assignments whose budgets fill
// but never exceed each upstream's capacity, each agent's data lands in its
// primary, and when one agent is killed with SIGKILL its lease expires and
// the survivors share the capacity.
func TestClusteredAgents(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vmA, vmB := testenv.StartVM(t), testenv.StartVM(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=e2e"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfgFile, `upstreams:
  - {name: vm-a, url: "`+vmA.ImportURL+`", capacity: 1MiB/s}
  - {name: vm-b, url: "`+vmB.ImportURL+`", capacity: 1MiB/s}
agents:
  compress: {flush_age: 250ms}
`)
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	procs := map[string]*exec.Cmd{}
	for _, n := range []string{"n1", "n2", "n3"} {
		cmd := exec.Command(binary, "agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", "2s",
			"--procfs-root", fixture, "--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[n] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}

	status := func() clusterStatus {
		t.Helper()
		out, stderr, code := run(t, "status", ep, cl, "-o", "json")
		if code != 0 {
			t.Fatalf("status: %s", stderr)
		}
		var s clusterStatus
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		return s
	}
	converged := func(n int) func(clusterStatus) bool {
		return func(s clusterStatus) bool {
			if len(s.Agents) != n {
				return false
			}
			for _, a := range s.Agents {
				if a.ConfigRevision != s.ConfigRevision || len(a.Upstreams) != 2 || a.BudgetBytesPerSecond == 0 {
					return false
				}
			}
			for _, u := range s.Upstreams {
				if u.Agents > 0 && u.BudgetBytesPerSecond != u.CapacityBytesPerSecond {
					return false
				}
			}
			return true
		}
	}
	var s clusterStatus
	waitStatus := func(what string, cond func(clusterStatus) bool) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for s = status(); !cond(s); s = status() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status: %+v", what, s)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitStatus("three agents with full budgets", converged(3))
	for _, u := range s.Upstreams {
		if u.BudgetBytesPerSecond > u.CapacityBytesPerSecond {
			t.Fatalf("budgets on %s exceed its capacity: %+v", u.Name, u)
		}
	}

	// Each agent's data is in the VictoriaMetrics of its primary.
	vms := map[string]*testenv.VM{"vm-a": vmA, "vm-b": vmB}
	for _, a := range s.Agents {
		vm := vms[a.Upstreams[0]]
		deadline := time.Now().Add(20 * time.Second)
		for {
			vm.Flush(t)
			series, err := vm.TryExport(`node_load1{instance="` + a.Node + `"}`)
			if err == nil && len(series) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's data never reached its primary %s", a.Node, a.Upstreams[0])
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	// SIGKILL: the lease expires, the survivors take over the capacity.
	if err := procs["n2"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus("two agents after n2 was killed", converged(2))
	for _, a := range s.Agents {
		if a.Node == "n2" {
			t.Fatalf("killed agent still listed: %+v", s.Agents)
		}
	}

	// One VictoriaMetrics crashes: the agents that wrote there fail over to
	// the other at once, the gossip agrees it is down, and the ring moves
	// them there with budgets that still fit its capacity.
	dead := s.Agents[0].Upstreams[0]
	moved := s.Agents[0].Node
	killedAt := time.Now()
	vms[dead].Kill()
	waitStatus("every agent on the surviving upstream", func(s clusterStatus) bool {
		if !converged(2)(s) {
			return false
		}
		for _, a := range s.Agents {
			if a.Upstreams[0] == dead {
				return false
			}
		}
		for _, u := range s.Upstreams {
			if u.Name == dead && u.Healthy {
				return false // status keys are written every 10s at most
			}
		}
		return true
	})
	for _, u := range s.Upstreams {
		if u.Name == dead && (u.Healthy || u.Agents != 0) {
			t.Fatalf("dead upstream %s reported as %+v", dead, u)
		}
		if u.BudgetBytesPerSecond > u.CapacityBytesPerSecond {
			t.Fatalf("budgets on %s exceed its capacity after failover: %+v", u.Name, u)
		}
	}
	// The moved agent's data written after the crash is in the survivor.
	var survivor *testenv.VM
	for name, vm := range vms {
		if name != dead {
			survivor = vm
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		survivor.Flush(t)
		series, err := survivor.TryExport(`node_load1{instance="` + moved + `"}`)
		if err == nil && len(series) == 1 && series[0].Timestamps[len(series[0].Timestamps)-1] > killedAt.UnixMilli() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's data after the crash of %s never reached the other VictoriaMetrics", moved, dead)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
