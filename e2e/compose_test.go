//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestCompose runs against the cluster `make up` started; its subtests run
// in order and each puts back what it broke.
func TestCompose(t *testing.T) {
	if _, err := run(30*time.Second, "docker", "info"); err != nil {
		t.Skipf("Docker is not available, skipping the compose tests: %v", err)
	}
	if err := buildCLI(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if d, err := eventually(2*time.Minute, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		return s.complete()
	}); err != nil {
		t.Fatalf("the cluster did not come up (is `make up` done?): %v", err)
	} else {
		t.Logf("cluster complete in status after %v", d.Round(time.Millisecond))
	}
	t.Run("DataArrives", testDataArrives)
	t.Run("VictoriaMetricsStopped", testVMStopped)
	t.Run("AgentCutOff", testAgentCutOff)
	t.Run("EtcdStopped", testEtcdStopped)
	t.Run("RollingRestart", testRollingRestart)
}

func testDataArrives(t *testing.T) {
	var s clusterStatus
	d, err := eventually(time.Minute, func() error {
		var err error
		if s, err = getStatus(); err != nil {
			return err
		}
		if err := s.complete(); err != nil {
			return err
		}
		for _, n := range agents {
			vm, err := s.landing(n)
			if err != nil {
				return err
			}
			ts, per, err := samples(fmt.Sprintf(`node_load1{instance=%q}`, n), time.Now().Add(-time.Minute), time.Now())
			if err != nil {
				return err
			}
			if per[vm] == 0 {
				return fmt.Errorf("node_load1 of %s not in %s (its primary), samples per VM: %v", n, vm, per)
			}
			if time.Since(ts[len(ts)-1]) > 15*time.Second {
				return fmt.Errorf("node_load1 of %s: last sample at %s", n, ts[len(ts)-1].Format(time.TimeOnly))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range agents {
		vm, _ := s.landing(n)
		m, _ := s.member(n)
		t.Logf("%s: upstreams %v, data in %s", n, m.Upstreams, vm)
	}
	t.Logf("every agent's data queryable and status complete after %v", d.Round(time.Millisecond))
}

func testVMStopped(t *testing.T) {
	s, err := getStatus()
	if err != nil {
		t.Fatal(err)
	}
	var moved, landed []string // primary vm1; data lands in vm1
	for _, n := range append(append([]string{}, agents...), "relay1") {
		if m, ok := s.member(n); ok && len(m.Upstreams) > 0 && m.Upstreams[0] == "vm1" {
			moved = append(moved, n)
		}
	}
	for _, n := range agents {
		if vm, err := s.landing(n); err == nil && vm == "vm1" {
			landed = append(landed, n)
		}
	}
	t.Logf("primary vm1: %v; data landing in vm1: %v", moved, landed)
	if len(moved) == 0 {
		t.Log("nobody writes to vm1 first; stopping it anyway")
	}
	stopped := time.Now()
	docker(t, "stop", container("vm1"))
	t.Cleanup(func() {
		docker(t, "start", container("vm1"))
		if _, err := eventually(time.Minute, func() error {
			base, err := vmURL("vm1")
			if err == nil {
				_, err = get(base + "/health")
			}
			return err
		}); err != nil {
			t.Errorf("vm1 not healthy after start: %v", err)
		}
	})
	d, err := eventually(30*time.Second, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		for _, n := range moved {
			m, ok := s.member(n)
			if !ok || len(m.Upstreams) == 0 || m.Upstreams[0] == "vm1" {
				return fmt.Errorf("%s still has primary vm1 (or none): %+v", n, m)
			}
		}
		for _, u := range s.Upstreams {
			if u.Name == "vm2" && u.BudgetBytesPerSecond > u.CapacityBytesPerSecond {
				return fmt.Errorf("vm2: budgets %d B/s over capacity %d B/s", u.BudgetBytesPerSecond, u.CapacityBytesPerSecond)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	t.Logf("failover in status %v after docker stop returned (%v after it began)", d.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	// Data of every agent keeps arriving, now in vm2.
	since := time.Now()
	d, err = eventually(30*time.Second, func() error {
		for _, n := range agents {
			_, per, err := samples(fmt.Sprintf(`node_load1{instance=%q}`, n), since, time.Now().Add(time.Minute))
			if err != nil {
				return err
			}
			if per["vm2"] == 0 {
				return fmt.Errorf("no node_load1 of %s in vm2 since %s", n, since.Format(time.TimeOnly))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every agent's data arriving in vm2 %v after failover", d.Round(time.Millisecond))
	if s, err := getStatus(); err == nil {
		for _, u := range s.Upstreams {
			t.Logf("upstream %s: %d agents, %d relays, budgets %d of %d B/s, healthy %v", u.Name, u.Agents, u.Relays, u.BudgetBytesPerSecond, u.CapacityBytesPerSecond, u.Healthy)
		}
	}
}
