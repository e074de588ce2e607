package cluster

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// statusLog records every value written to a status key, from a watch.
type statusLog struct {
	mu     sync.Mutex
	writes []Status
}

func watchStatus(t *testing.T, cli *clientv3.Client, key string) *statusLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wch := cli.Watch(ctx, key)
	l := &statusLog{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				var s Status
				if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &s) == nil {
					l.mu.Lock()
					l.writes = append(l.writes, s)
					l.mu.Unlock()
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return l
}

// waitFor waits until a write satisfies cond and returns its index.
func (l *statusLog) waitFor(t *testing.T, what string, timeout time.Duration, cond func(Status) bool) int {
	t.Helper()
	i := -1
	waitUntil(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for j, s := range l.writes {
			if cond(s) {
				i = j
				return true
			}
		}
		return false
	}, timeout)
	return i
}

func (l *statusLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.writes)
}

func (l *statusLog) get(i int) Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes[i]
}

// TestStatusIntervalFromConfig checks that a member writes its status at
// most every status.interval of the config revision it applies, and as
// often when its status changes: with 1s its status key is rewritten
// about every second, with 10s not sooner than 10s after the last write
// (the revision applied is written at once, not held back: see
// TestRolloutShowsInStatusWithinASecond), and a revision back at 1s lets
// the statuses held back by 10s out again.
// The gaps are measured on the written statuses' own time stamps (set by
// the member when it builds them, every 100ms here), not on the watch's
// delivery, which a loaded machine delays.
func TestStatusIntervalFromConfig(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	withInterval := func(d string) []byte { return []byte(oneUpstream + "status: {interval: " + d + "}\n") }
	st, rev1 := bootstrap(t, cli, withInterval("1s"))
	sl := watchStatus(t, cli, "/procfleet/ct/status/a1")
	tm := runMember(t, testConfig(e.Endpoints, "a1"))

	// The status changes every 100ms, as a busy shipper's queue would.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				tm.m.ReportShipper(i, nil, 0)
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	// status.interval 1s: about one write a second, never two within it.
	first := sl.waitFor(t, "a status of revision 1", 15*time.Second, func(s Status) bool { return s.ConfigRevision == rev1 })
	const writes = 5
	waitUntil(t, "5 more status writes", func() bool { return sl.len() > first+writes }, 15*time.Second)
	var gaps []time.Duration
	for i := first + 1; i <= first+writes; i++ {
		gaps = append(gaps, sl.get(i).Updated.Sub(sl.get(i-1).Updated))
	}
	for _, gap := range gaps {
		// Wide margins: the machine may be loaded. Without the interval
		// applied, the writes are 10s apart.
		if gap < 500*time.Millisecond || gap > 5*time.Second {
			t.Errorf("status.interval 1s: writes %v apart; want about 1s each", gaps)
			break
		}
	}

	// status.interval 10s: the status of the new revision is written at
	// once, and the changing counters wait for 10s after it.
	rev2, err := st.Set(context.Background(), withInterval("10s"), rev1)
	if err != nil {
		t.Fatal(err)
	}
	i2 := sl.waitFor(t, "a status of revision 2", 30*time.Second, func(s Status) bool { return s.ConfigRevision == rev2 })
	waitUntil(t, "a status write after the one of revision 2", func() bool { return sl.len() > i2+1 }, 30*time.Second)
	if gap := sl.get(i2 + 1).Updated.Sub(sl.get(i2).Updated); gap < 8500*time.Millisecond {
		t.Errorf("status.interval 10s: the status was written %s after the one before; want 10s at least", gap)
	}

	// Back to 1s: the status is not held for the rest of the 10s.
	set := time.Now()
	rev3, err := st.Set(context.Background(), withInterval("1s"), rev2)
	if err != nil {
		t.Fatal(err)
	}
	sl.waitFor(t, "a status of revision 3", 30*time.Second, func(s Status) bool { return s.ConfigRevision == rev3 })
	if d := time.Since(set); d > 6*time.Second { // held by 10s, it would take about 9.5s
		t.Errorf("status.interval back to 1s: the status of the new revision took %s to be written; want about 1s", d)
	}
}
