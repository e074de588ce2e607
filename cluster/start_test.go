package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/agent/scrape"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// testConfig is a member of cluster ct on loopback, with short timings.
func testConfig(endpoints []string, node string) Config {
	gc := gossip.DefaultConfig()
	gc.BindAddr, gc.BindPort = "127.0.0.1", 0
	return Config{Cluster: "ct", Node: node, Kind: keys.Agent, Etcd: etcdclient.Config{Endpoints: endpoints},
		LeaseTTL: 2 * time.Second, Gossip: gc, StateWait: 300 * time.Millisecond}
}

// oneUpstream is a cluster document with a single upstream, which every
// agent shares.
const oneUpstream = "ring: {fallbacks: 0}\nupstreams: [{name: vm-a, url: \"http://127.0.0.1:18428/api/v1/import/prometheus\", capacity: 10MiB/s}]\n"

// testMember is a running Member whose updates are recorded.
type testMember struct {
	t    testing.TB
	m    *Member
	done chan error
	stop func() error

	mu      sync.Mutex
	updates []Update
	targets []scrape.Target // the last ScrapeTargets
}

// runMember runs a member with cfg until the test ends or stop is called.
func runMember(t testing.TB, cfg Config) *testMember {
	t.Helper()
	local := config.DefaultAgent()
	local.Hostname = cfg.Node
	m, err := New(cfg, local, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tm := &testMember{t: t, m: m, done: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Go(func() { tm.done <- m.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case u := <-m.Updates():
				tm.mu.Lock()
				tm.updates = append(tm.updates, u)
				tm.mu.Unlock()
			case ts := <-m.ScrapeTargets():
				tm.mu.Lock()
				tm.targets = ts
				tm.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	})
	var once sync.Once
	var runErr error
	tm.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-tm.done:
			case <-time.After(15 * time.Second):
				runErr = errors.New("Run did not return within 15s of its context ending")
			}
			wg.Wait()
		})
		return runErr
	}
	t.Cleanup(func() { _ = tm.stop() })
	return tm
}

// last returns the newest update, if any.
func (tm *testMember) last() (Update, bool) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if len(tm.updates) == 0 {
		return Update{}, false
	}
	return tm.updates[len(tm.updates)-1], true
}

// status returns a copy of the member's status.
func (tm *testMember) status() Status {
	tm.m.mu.Lock()
	defer tm.m.mu.Unlock()
	st := tm.m.status
	st.Down = slices.Clone(st.Down)
	return st
}

func (tm *testMember) evals() uint64 {
	tm.m.mu.Lock()
	defer tm.m.mu.Unlock()
	return tm.m.evals
}

// waitUpdate waits for an update that satisfies cond and returns it.
func (tm *testMember) waitUpdate(what string, cond func(Update) bool) Update {
	tm.t.Helper()
	var u Update
	waitUntil(tm.t, what, func() bool {
		var ok bool
		u, ok = tm.last()
		return ok && cond(u)
	})
	return u
}

// bootstrap writes the cluster document doc and returns its revision.
func bootstrap(t testing.TB, cli *clientv3.Client, doc []byte) (*configstore.Store, int64) {
	t.Helper()
	st, err := configstore.New(cli, "ct", validateCluster)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := st.Bootstrap(context.Background(), doc, false)
	if err != nil {
		t.Fatal(err)
	}
	return st, rev
}

// TestTakenGossipPortFailsBeforeEtcd starts a member whose gossip port is
// taken: Run returns a BindError at once, and etcd's revision has not
// moved, so the member never registered, not even for a moment. Before,
// Run waited for the gossip forever, silently.
func TestTakenGossipPortFailsBeforeEtcd(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, doc("10MiB/s"))
	before, err := cli.Get(context.Background(), "/procfleet/ct/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(e.Endpoints, "a1")
	cfg.Gossip.BindPort = taken.Addr().(*net.TCPAddr).Port
	tm := runMember(t, cfg)
	select {
	case err := <-tm.done:
		tm.done <- err // for stop
		be, ok := errors.AsType[*gossip.BindError](err)
		if !ok || be.Addr != taken.Addr().String() || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Run = %v; want a BindError for %s with EADDRINUSE", err, taken.Addr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s with the gossip port taken")
	}
	after, err := cli.Get(context.Background(), "/procfleet/ct/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision || after.Count != before.Count {
		t.Errorf("etcd moved from revision %d (%d keys) to %d (%d keys): the member wrote something",
			before.Header.Revision, before.Count, after.Header.Revision, after.Count)
	}
	if _, ok := tm.last(); ok {
		t.Error("the member handed out settings")
	}
}

// TestDownCountsOnlyRegisteredVotes joins a gossip node that is not
// registered in etcd to a member's gossip; it says the only upstream is
// down, and the member does not count it. A registered member that says
// the same is counted. Before, any node in the gossip had a vote.
func TestDownCountsOnlyRegisteredVotes(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, []byte(oneUpstream))
	a1 := runMember(t, testConfig(e.Endpoints, "a1"))
	full := func(u Update) bool { return u.Assignment.Budget == 10<<20 }
	a1.waitUpdate("a1 with the whole capacity", full)
	g, _ := a1.m.gossip.current()

	gc := testConfig(nil, "ghost").Gossip
	gc.NodeName, gc.Cluster = "ghost", "ct"
	ghost, err := gossip.New(gc, gossip.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ghostDone := make(chan error, 1)
	go func() { ghostDone <- ghost.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ghostDone })
	<-ghost.Ready()
	if err := ghost.SetLocal(gossip.State{Endpoints: map[string]bool{"vm-a": false}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ghost.Join([]string{g.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the ghost's vote in a1's gossip", func() bool {
		st, ok := g.States()["ghost"]
		return ok && st.Endpoints != nil && !st.Endpoints["vm-a"]
	})
	n := a1.evals()
	waitUntil(t, "a1 to evaluate the gossip with the ghost's vote", func() bool { return a1.evals() > n })
	if st := a1.status(); len(st.Down) != 0 {
		t.Errorf("a1 holds %v down on an unregistered node's vote", st.Down)
	}
	if u, _ := a1.last(); !full(u) {
		t.Errorf("a1's assignment after the ghost's vote: %+v; want the whole capacity of vm-a", u.Assignment)
	}

	// A registered member's vote counts: vm-a is down, no budget.
	a2 := runMember(t, testConfig(e.Endpoints, "a2"))
	a2.waitUpdate("a2's settings", func(u Update) bool { return len(u.Assignment.Upstreams) == 1 })
	a2.m.ReportShipper(0, []EndpointHealth{{URL: "http://127.0.0.1:18428/api/v1/import/prometheus", Healthy: false, Recent: true}}, 0)
	a1.waitUpdate("a1 to count a2's vote", func(u Update) bool { return u.Assignment.Budget == 0 })
	if st := a1.status(); !slices.Equal(st.Down, []string{"vm-a"}) {
		t.Errorf("a1's status holds %v down; want [vm-a]", st.Down)
	}
}

// TestViewForgetsDepartedNodes feeds a view a thousand nodes that come
// and go: what it keeps is bounded by the nodes alive or registered. Before,
// every node ever seen stayed in the map.
func TestViewForgetsDepartedNodes(t *testing.T) {
	now := time.Now()
	v := newView("self")
	self := memberID{keys.Agent, "self"}
	live := members{self: {}}
	for i := range 1000 {
		n := fmt.Sprintf("n%d", i)
		v.observe([]string{"self", n}, nil, live, now) // in the gossip, never registered
		id := memberID{keys.Agent, n}
		live[id] = reg(n)
		v.observe([]string{"self", n}, nil, live, now) // registered
		v.withoutGone(live)
		v.observe([]string{"self"}, nil, live, now) // dead in the gossip, lease not expired yet
		if got := v.withoutGone(live); len(got) != 1 {
			t.Fatalf("%s dead in the gossip still counts: %v", n, ids(got))
		}
		delete(live, id) // lease expired
		v.observe([]string{"self"}, nil, live, now)
	}
	if len(v.seen) > 1 || len(v.gone) != 0 {
		t.Errorf("after 1000 nodes came and went: %d seen, %d gone; want at most 1 (self), 0", len(v.seen), len(v.gone))
	}
}

func reg(addr string) liveMember { return liveMember{Address: addr} }

// TestStartsOnSavedStateWithoutEtcd runs a member with a state file, then
// starts it again while etcd is down: it hands out the saved settings at
// once, says so in its status, and converges when etcd returns. Before,
// it waited for etcd with nothing to run on.
func TestStartsOnSavedStateWithoutEtcd(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	store, rev := bootstrap(t, cli, doc("10MiB/s"))
	file := filepath.Join(t.TempDir(), StateFileName)
	cfg := testConfig(e.Endpoints, "a1")
	cfg.StateFile = file
	first := runMember(t, cfg)
	u1 := first.waitUpdate("settings from etcd", func(u Update) bool { return u.Revision == rev && u.Assignment.Budget > 0 })
	waitUntil(t, "the state file", func() bool {
		st, err := loadState(file, cfg)
		return err == nil && st.Revision == rev && slices.Equal(st.Upstreams, u1.Assignment.Upstreams)
	})
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	e.Stop()
	start := time.Now()
	second := runMember(t, cfg)
	u2 := second.waitUpdate("the saved settings", func(Update) bool { return true })
	t.Logf("started on the saved state %v after Run", time.Since(start).Round(time.Millisecond))
	if u2.Revision != rev || !slices.Equal(u2.Assignment.Upstreams, u1.Assignment.Upstreams) || u2.Assignment.Budget != u1.Assignment.Budget ||
		!slices.Equal(u2.Agent.Ship.Upstreams, u1.Agent.Ship.Upstreams) || u2.Agent.Limit != u1.Agent.Limit {
		t.Errorf("saved settings %+v / %+v; want %+v / %+v", u2.Assignment, u2.Agent.Ship.Upstreams, u1.Assignment, u1.Agent.Ship.Upstreams)
	}
	if st := second.status(); !strings.Contains(st.SavedState, fmt.Sprintf("saved state of config revision %d", rev)) {
		t.Errorf("status says %q about the saved state", st.SavedState)
	}

	e.Restart(t)
	var rev2 int64
	waitUntil(t, "a config write after etcd returned", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		rev2, err = store.Set(ctx, doc("20MiB/s"), rev)
		return err == nil
	})
	second.waitUpdate("the revision written after etcd returned", func(u Update) bool { return u.Revision == rev2 })
	if st := second.status(); st.SavedState != "" {
		t.Errorf("status still says %q once etcd answered", st.SavedState)
	}
	waitUntil(t, "the new revision saved", func() bool {
		st, err := loadState(file, cfg)
		return err == nil && st.Revision == rev2
	})
}

// TestPendingSaysWhyWithoutEtcd runs a member with neither etcd nor a
// saved state: it hands out nothing, Pending says etcd cannot be reached,
// and Run stops promptly when asked.
func TestPendingSaysWhyWithoutEtcd(t *testing.T) {
	nowhere := "http://" + testenv.FreeAddr(t)
	cfg := testConfig([]string{nowhere}, "a1")
	cfg.StateFile = filepath.Join(t.TempDir(), StateFileName)
	tm := runMember(t, cfg)
	waitUntil(t, "Pending to say etcd cannot be reached", func() bool {
		err := tm.m.Pending()
		return err != nil && strings.Contains(err.Error(), "cannot reach etcd at "+nowhere)
	})
	if _, ok := tm.last(); ok {
		t.Error("settings handed out without etcd or a saved state")
	}
	start := time.Now()
	if err := tm.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %v to stop", took)
	}
}

// TestGossipStopsLater stops a member's gossip while it runs and keeps its
// port taken: the member runs on etcd alone (the other member keeps its
// half of the one upstream: nobody is taken for dead), says so in its
// status key, and runs its gossip again once the port is free.
func TestGossipStopsLater(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, []byte(oneUpstream))
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cfg := testConfig(e.Endpoints, "a1")
	fmt.Sscan(port, &cfg.Gossip.BindPort)
	cfg.GossipRetry = 5 * time.Second // time to take the port before the restart
	a1 := runMember(t, cfg)
	a2 := runMember(t, testConfig(e.Endpoints, "a2"))
	both := func() bool {
		u1, ok1 := a1.last()
		u2, ok2 := a2.last()
		g, _ := a1.m.gossip.current()
		return ok1 && ok2 && u1.Assignment.Budget == 5<<20 && u2.Assignment.Budget == 5<<20 && g != nil && len(g.Members()) == 2
	}
	waitUntil(t, "a1 and a2 sharing the upstream, in one gossip", both)
	before, _ := a1.last()

	a1.m.gossip.kill()
	waitUntil(t, "a1's status to say the gossip stopped", func() bool { return a1.status().Gossip != "" })
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a failed restart of a1's gossip", func() bool {
		return strings.Contains(a1.status().Gossip, "address already in use")
	})
	var page strings.Builder
	a1.m.Metrics().WritePrometheus(&page)
	if p := page.String(); strings.Contains(p, "procfleet_gossip_") || !strings.Contains(p, "\nprocfleet_cluster_gossip_running 0\n") {
		t.Errorf("a1's metrics without gossip:\n%s", p)
	}
	if u, _ := a1.last(); u.Assignment.Budget != before.Assignment.Budget || !slices.Equal(u.Assignment.Upstreams, before.Assignment.Upstreams) {
		t.Errorf("a1 without gossip: %+v; want %+v, a2 still counted", u.Assignment, before.Assignment)
	}
	waitUntil(t, "a1's status key to say it runs on etcd alone", func() bool {
		resp, err := cli.Get(context.Background(), "/procfleet/ct/status/a1")
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		var st Status
		return json.Unmarshal(resp.Kvs[0].Value, &st) == nil && strings.Contains(st.Gossip, "running on etcd alone")
	}, 30*time.Second)

	tcp.Close()
	udp.Close()
	waitUntil(t, "a1's gossip running again, with a2", func() bool {
		g, _ := a1.m.gossip.current()
		return g != nil && len(g.Members()) == 2 && a1.status().Gossip == ""
	}, 30*time.Second)
	// The member's metrics show the new gossip's series (each start
	// counts in a set of its own: two in one would clash).
	waitUntil(t, "a1's metrics with the new gossip", func() bool {
		var b strings.Builder
		a1.m.Metrics().WritePrometheus(&b)
		page := b.String()
		return strings.Contains(page, "\nprocfleet_gossip_members 2\n") && strings.Contains(page, "\nprocfleet_cluster_gossip_running 1\n")
	})
}

// TestComputeOnlyOnChange: the loop evaluates at every refresh and gossip
// change, but runs the ring again only when its inputs change (another
// member registers); evaluations with the same inputs reuse the last
// result.
func TestComputeOnlyOnChange(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, []byte(oneUpstream))
	var rings atomic.Int64
	cfg := testConfig(e.Endpoints, "a1")
	cfg.RingCompute = func(in ring.Input) (map[string]ring.Assignment, error) {
		rings.Add(1)
		return ring.Compute(in)
	}
	a1 := runMember(t, cfg)
	a1.waitUpdate("a1's settings", func(u Update) bool { return len(u.Assignment.Upstreams) == 1 })
	n, r := a1.evals(), rings.Load()
	// The refresh evaluates every 5 s, with the same inputs.
	waitUntil(t, "two more evaluations", func() bool { return a1.evals() >= n+2 }, 30*time.Second)
	if got := rings.Load(); got != r {
		t.Fatalf("the ring ran %d times in evaluations with the same inputs; want none", got-r)
	}
	a2 := runMember(t, testConfig(e.Endpoints, "a2"))
	a2.waitUpdate("a2's settings", func(u Update) bool { return len(u.Assignment.Upstreams) == 1 })
	waitUntil(t, "a1's ring over a2", func() bool { return rings.Load() > r })
}
