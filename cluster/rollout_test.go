package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// statusArrivals records, per node, when the watch of the status keys
// first saw a status satisfying cond.
type statusArrivals struct {
	mu   sync.Mutex
	seen map[string]time.Time
	last map[string]Status
}

func watchArrivals(t *testing.T, cli *clientv3.Client, space keys.Space) *statusArrivals {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &statusArrivals{seen: map[string]time.Time{}, last: map[string]Status{}}
	wch := cli.Watch(ctx, space.StatusPrefix(), clientv3.WithPrefix())
	var wg sync.WaitGroup
	wg.Go(func() {
		for resp := range wch {
			now := time.Now()
			for _, ev := range resp.Events {
				node, ok := space.ParseStatus(string(ev.Kv.Key))
				var s Status
				if !ok || ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &s) != nil {
					continue
				}
				a.mu.Lock()
				a.last[node] = s
				if _, ok := a.seen[node]; !ok {
					a.seen[node] = now
				}
				a.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a
}

// reset forgets the arrivals, to time the next change.
func (a *statusArrivals) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.seen)
}

// waitAll waits until every node's latest status satisfies cond and
// returns, per node, when the first status that did arrived. A status
// that does not satisfy cond resets the node's arrival.
func (a *statusArrivals) waitAll(t *testing.T, what string, nodes []string, cond func(Status) bool) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	waitUntil(t, what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, n := range nodes {
			s, ok := a.last[n]
			if !ok || !cond(s) {
				delete(a.seen, n)
				return false
			}
			out[n] = a.seen[n]
		}
		return true
	}, 30*time.Second)
	return out
}

// TestRolloutShowsInStatusWithinASecond runs three members on the default
// status.interval (10s), each reporting changing counters every 100ms as a
// busy shipper does, so that each status key is rewritten on the 10s
// timer. After each config write, every member's status key shows the new
// revision well within a second or so (the member's jitter, at most 500ms,
// plus etcd's round trips); before, it waited for the next timed write, up
// to 10s. A revision a member cannot apply shows as rejected just as soon.
func TestRolloutShowsInStatusWithinASecond(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	space, _ := keys.New("ct")
	st, rev := bootstrap(t, cli, []byte(oneUpstream))
	arr := watchArrivals(t, cli, space)
	nodes := []string{"a1", "a2", "a3"}
	var members []*testMember
	for _, n := range nodes {
		members = append(members, runMember(t, testConfig(e.Endpoints, n)))
	}
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
				for _, tm := range members {
					tm.m.ReportShipper(i, nil, 0)
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	arr.waitAll(t, "every member's status at the first revision", nodes, func(s Status) bool { return s.ConfigRevision == rev })

	var delays []time.Duration
	for i := range 3 {
		// A status written by the timer just now; the next is 10s away.
		time.Sleep(time.Duration(1+i) * 700 * time.Millisecond)
		arr.reset()
		doc := fmt.Sprintf("%sagents: {full_every: %d}\n", oneUpstream, 20+i)
		begin := time.Now()
		next, err := st.Set(context.Background(), []byte(doc), rev)
		if err != nil {
			t.Fatal(err)
		}
		rev = next
		for _, at := range arr.waitAll(t, fmt.Sprintf("every member's status at revision %d", rev), nodes, func(s Status) bool { return s.ConfigRevision == rev }) {
			delays = append(delays, at.Sub(begin))
		}
	}
	// An invalid revision, written around the store: each member keeps
	// its revision and says which one it refused, as soon.
	time.Sleep(time.Second)
	arr.reset()
	begin := time.Now()
	put, err := cli.Put(context.Background(), space.Config(), "upstreams: []\n")
	if err != nil {
		t.Fatal(err)
	}
	bad := put.Header.Revision
	for n, at := range arr.waitAll(t, "every member refusing the invalid revision", nodes, func(s Status) bool {
		return s.ConfigRevision == rev && s.RejectedRevision == bad && strings.Contains(s.LastError, fmt.Sprintf("config revision %d not applied", bad))
	}) {
		delays = append(delays, at.Sub(begin))
		t.Logf("%s refused revision %d after %s", n, bad, at.Sub(begin))
	}

	slices.Sort(delays)
	t.Logf("config write to status key: %v", delays)
	// Margins for a loaded machine: the jitter is at most 500ms and etcd
	// answers in milliseconds; the timer alone would take 5s on average.
	if median := delays[len(delays)/2]; median > time.Second {
		t.Errorf("median delay from config write to status %s; want within 1s", median)
	}
	if worst := delays[len(delays)-1]; worst > 1500*time.Millisecond {
		t.Errorf("worst delay from config write to status %s; want about 1s at most", worst)
	}
}

// TestStatusJitter checks that the members' jitter stays within 500ms
// and spreads over it, so that a fleet does not write in one millisecond.
func TestStatusJitter(t *testing.T) {
	buckets := map[time.Duration]int{}
	for i := range 1000 {
		j := statusJitter(fmt.Sprintf("host-%d.example.com", i))
		if j < 0 || j >= maxStatusJitter {
			t.Fatalf("jitter %s outside [0, %s)", j, maxStatusJitter)
		}
		buckets[j/(50*time.Millisecond)]++
	}
	for b := range time.Duration(10) {
		if n := buckets[b]; n < 50 || n > 150 {
			t.Errorf("%d of 1000 nodes in the jitter's %dth 50ms; want about 100 in each: %v", n, b, buckets)
		}
	}
}
