package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

const twoUpstreams = `upstreams:
  - {name: vm-a, url: "http://127.0.0.1:18428/api/v1/import/prometheus", capacity: %CAP%}
  - {name: vm-b, url: "http://127.0.0.1:18429/api/v1/import/prometheus", capacity: %CAP%}
`

func doc(capacity string) []byte {
	return []byte(strings.ReplaceAll(twoUpstreams, "%CAP%", capacity))
}

// latest keeps the newest update of each member.
type latest struct {
	mu sync.Mutex
	u  map[string]Update
}

func (l *latest) get(node string) (Update, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.u[node]
	return u, ok
}

func startMember(t testing.TB, ctx context.Context, endpoints []string, node string, l *latest) context.CancelFunc {
	t.Helper()
	return startMemberOf(t, ctx, endpoints, keys.Agent, node, l)
}

// startMemberOf runs a member of kind in cluster ct, recording its updates
// in l; the returned function stops it and waits until it has left.
func startMemberOf(t testing.TB, ctx context.Context, endpoints []string, kind keys.Kind, node string, l *latest) context.CancelFunc {
	t.Helper()
	local := config.DefaultAgent()
	local.Hostname = node
	gc := gossip.DefaultConfig()
	gc.BindAddr, gc.BindPort = "127.0.0.1", 0
	m, err := New(Config{Cluster: "ct", Node: node, Kind: kind, Etcd: etcdclient.Config{Endpoints: endpoints}, LeaseTTL: 2 * time.Second, Gossip: gc}, local, nil)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(mctx) })
	wg.Go(func() {
		for {
			select {
			case u := <-m.Updates():
				l.mu.Lock()
				l.u[node] = u
				l.mu.Unlock()
			case <-mctx.Done():
				return
			}
		}
	})
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// waitUntil polls cond until it holds, or fails the test after 15s (or
// the timeout given).
func waitUntil(t testing.TB, what string, cond func() bool, timeout ...time.Duration) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	if len(timeout) > 0 {
		deadline = time.Now().Add(timeout[0])
	}
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// budgets sums the budgets per primary upstream and checks every member
// has the same revision.
func budgets(l *latest, nodes []string, rev int64) (map[string]int64, map[string]int, bool) {
	sum, count := map[string]int64{}, map[string]int{}
	for _, n := range nodes {
		u, ok := l.get(n)
		if !ok || u.Revision != rev || len(u.Assignment.Upstreams) != 2 {
			return nil, nil, false
		}
		sum[u.Assignment.Upstreams[0]] += u.Assignment.Budget
		count[u.Assignment.Upstreams[0]]++
	}
	return sum, count, true
}

func TestMembersAgreeOnAssignmentsAndBudgets(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	st, err := configstore.New(cli, "ct", func(b []byte) error { _, err := config.ParseCluster(b); return err })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rev, err := st.Bootstrap(ctx, doc("10MiB/s"), false)
	if err != nil {
		t.Fatal(err)
	}
	l := &latest{u: map[string]Update{}}
	nodes := []string{"a1", "a2", "a3", "a4"}
	stops := map[string]context.CancelFunc{}
	for _, n := range nodes {
		stops[n] = startMember(t, ctx, e.Endpoints, n, l)
	}
	check := func(nodes []string, rev int64, capacity int64) {
		t.Helper()
		var sum map[string]int64
		var count map[string]int
		waitUntil(t, "every member at the revision with full budgets", func() bool {
			var ok bool
			sum, count, ok = budgets(l, nodes, rev)
			if !ok {
				return false
			}
			total := 0
			for up, s := range sum {
				total += count[up]
				if s != capacity {
					return false // still converging on membership
				}
			}
			return total == len(nodes)
		})
		for _, n := range nodes {
			u, _ := l.get(n)
			if u.Agent.Ship.Strategy != config.StrategyOrdered || len(u.Agent.Ship.Upstreams) != 2 ||
				int64(u.Agent.Limit.BytesPerSecond) != u.Assignment.Budget {
				t.Fatalf("%s: settings do not follow the assignment: %+v / %+v", n, u.Agent.Ship, u.Assignment)
			}
		}
	}
	check(nodes, rev, 10<<20)

	// A new config revision is applied live by every member.
	rev2, err := st.Set(ctx, doc("20MiB/s"), rev)
	if err != nil {
		t.Fatal(err)
	}
	check(nodes, rev2, 20<<20)

	// One member leaves: the others share its upstream's capacity.
	stops["a4"]()
	check(nodes[:3], rev2, 20<<20)

	// An invalid document written around the validation is not applied:
	// members keep the last good revision and report the error.
	if _, err := cli.Put(ctx, "/procfleet/ct/config", "upstreams: []\n"); err != nil {
		t.Fatal(err)
	}
	// Each status key with the error shows that its member took the
	// document in; only then does its revision say anything.
	for _, n := range nodes[:3] {
		waitUntil(t, n+"'s status key with the error", func() bool {
			resp, err := cli.Get(ctx, "/procfleet/ct/status/"+n)
			if err != nil || len(resp.Kvs) == 0 {
				return false
			}
			var s Status
			return json.Unmarshal(resp.Kvs[0].Value, &s) == nil && strings.Contains(s.LastError, "not applied")
		}, 30*time.Second) // status keys are written every 10s at most
		if u, _ := l.get(n); u.Revision != rev2 {
			t.Fatalf("%s moved to revision %d after an invalid document", n, u.Revision)
		}
	}
}
