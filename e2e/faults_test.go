//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"
)

// waitComplete waits until status lists every member at the current config
// revision, so that a scenario starts from a whole cluster.
func waitComplete(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	d, err := eventually(timeout, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		return s.complete()
	})
	if err != nil {
		t.Fatalf("cluster not complete: %v", err)
	}
	return d
}

func ctxSwitches(node string) string {
	return fmt.Sprintf(`node_context_switches_total{instance=%q}`, node)
}

// waitGap waits until node_context_switches_total of node has no gap larger
// than limit in [start, end] (samples come late from a spool or a relay)
// and returns the gap it saw last.
func waitGap(node string, start, end time.Time, limit, timeout time.Duration) (time.Duration, error) {
	var gap time.Duration
	_, err := eventually(timeout, func() error {
		ts, _, err := samples(ctxSwitches(node), start.Add(-5*time.Second), end.Add(5*time.Second))
		if err != nil {
			return err
		}
		if gap = maxGap(ts, start, end); gap > limit {
			return fmt.Errorf("%s: gap of %v in node_context_switches_total between %s and %s, want at most %v",
				node, gap.Round(time.Millisecond), start.Format(time.TimeOnly), end.Format(time.TimeOnly), limit)
		}
		return nil
	})
	return gap, err
}

func testAgentCutOff(t *testing.T) {
	waitComplete(t, time.Minute)
	const node = "agent1"
	spooled := fmt.Sprintf(`procfleet_ship_spooled_batches_total{instance=%q}`, node)
	replayed := fmt.Sprintf(`procfleet_ship_replayed_batches_total{instance=%q}`, node)
	replayedBefore, _ := maxValue(replayed, time.Now().Add(-10*time.Minute), time.Now())
	spooledBefore, _ := maxValue(spooled, time.Now().Add(-10*time.Minute), time.Now())

	cutStart := time.Now()
	docker(t, "network", "disconnect", network, container(node))
	connected := false
	t.Cleanup(func() {
		if !connected {
			docker(t, "network", "connect", network, container(node))
		}
	})
	time.Sleep(60 * time.Second) // the outage itself, not a wait for a condition
	docker(t, "network", "connect", network, container(node))
	connected = true
	cutEnd := time.Now()
	t.Logf("%s cut off from %s to %s", node, cutStart.Format(time.TimeOnly), cutEnd.Format(time.TimeOnly))

	gap, err := waitGap(node, cutStart, cutEnd, 3*time.Second, 2*time.Minute)
	if err != nil {
		t.Error(err)
	}
	t.Logf("largest gap in node_context_switches_total over the cut window: %v (waited %v after reconnecting)",
		gap.Round(time.Millisecond), time.Since(cutEnd).Round(time.Millisecond))

	var sp, rp float64
	d, err := eventually(90*time.Second, func() error {
		var err error
		if sp, err = maxValue(spooled, cutStart.Add(-time.Minute), time.Now()); err != nil {
			return err
		}
		if rp, err = maxValue(replayed, cutStart.Add(-time.Minute), time.Now()); err != nil {
			return err
		}
		if sp <= spooledBefore || rp <= replayedBefore {
			return fmt.Errorf("spooled batches %v (before %v), replayed %v (before %v)", sp, spooledBefore, rp, replayedBefore)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	t.Logf("self-metrics after %v: spooled batches %v (before %v), replayed %v (before %v)",
		d.Round(time.Millisecond), sp, spooledBefore, rp, replayedBefore)
	if d, err := eventually(time.Minute, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		return s.complete()
	}); err != nil {
		// Restart the agent so that the later scenarios start from a whole
		// cluster; this scenario has failed all the same.
		t.Errorf("%s did not register again after the cut: %v; restarting it", node, err)
		docker(t, "restart", container(node))
		waitComplete(t, time.Minute)
	} else {
		t.Logf("cluster complete again %v after the checks above", d.Round(time.Millisecond))
	}
}

func testEtcdStopped(t *testing.T) {
	waitComplete(t, time.Minute)
	etcds := []string{container("etcd1"), container("etcd2"), container("etcd3")}
	t.Cleanup(func() { docker(t, append([]string{"start"}, etcds...)...) })

	stopped := time.Now()
	docker(t, "stop", container("etcd2"))
	if d, err := eventually(30*time.Second, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		return s.complete()
	}); err != nil {
		t.Errorf("status with etcd2 stopped: %v", err)
	} else {
		t.Logf("status complete with etcd2 stopped after %v", d.Round(time.Millisecond))
	}
	if d, err := arriving(agents, stopped.Add(2*time.Second), 30*time.Second); err != nil {
		t.Errorf("data with etcd2 stopped: %v", err)
	} else {
		t.Logf("every agent's data arriving with etcd2 stopped (%v)", d.Round(time.Millisecond))
	}
	docker(t, "start", container("etcd2"))
	waitComplete(t, time.Minute)

	allStopped := time.Now()
	docker(t, append([]string{"stop"}, etcds...)...)
	time.Sleep(time.Until(allStopped.Add(60 * time.Second))) // the outage itself
	outageEnd := time.Now()
	for _, n := range agents {
		gap, err := waitGap(n, allStopped, outageEnd, 5*time.Second, time.Minute)
		if err != nil {
			t.Errorf("data while every etcd was stopped: %v", err)
		}
		t.Logf("%s: largest gap while every etcd was stopped: %v", n, gap.Round(time.Millisecond))
	}
	started := time.Now()
	docker(t, append([]string{"start"}, etcds...)...)
	d, err := eventually(45*time.Second, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		return s.complete()
	})
	if err != nil {
		t.Fatalf("members after etcd came back: %v", err)
	}
	t.Logf("3 agents and 1 relay in status %v after docker start (%v after it began)",
		d.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}

func testRollingRestart(t *testing.T) {
	waitComplete(t, time.Minute)
	const interval = time.Second
	type window struct{ start, restarted, back time.Time }
	windows := map[string]window{}
	for _, n := range agents {
		w := window{start: time.Now()}
		docker(t, "restart", container(n))
		w.restarted = time.Now()
		if _, err := eventually(time.Minute, func() error {
			s, err := getStatus()
			if err != nil {
				return err
			}
			if err := s.complete(); err != nil {
				return err
			}
			ts, _, err := samples(ctxSwitches(n), w.restarted, time.Now())
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				return fmt.Errorf("no data from %s since its restart", n)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s not back: %v", n, err)
		}
		w.back = time.Now()
		windows[n] = w
		t.Logf("%s: docker restart took %v, back in status with data %v after it began",
			n, w.restarted.Sub(w.start).Round(time.Millisecond), w.back.Sub(w.start).Round(time.Millisecond))
	}
	for _, n := range agents {
		w := windows[n]
		limit := 2*interval + w.restarted.Sub(w.start) + 2*time.Second
		gap, err := waitGap(n, w.start.Add(-10*time.Second), w.back.Add(10*time.Second), limit, 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		t.Logf("%s: largest gap around its restart %v (limit %v)", n, gap.Round(time.Millisecond), limit.Round(time.Millisecond))
	}
}
