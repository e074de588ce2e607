package cluster

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// relayDoc has one VictoriaMetrics-like upstream and one relay upstream.
// With agents a1 and a2 and relay r1, a1's primary is relay-up and a2's
// is vm, which a2 shares with r1.
const relayDoc = `upstreams:
  - {name: vm, url: "http://127.0.0.1:18428/api/v1/import/prometheus", capacity: 12MiB/s}
  - {name: relay-up, url: "http://127.0.0.1:19478/api/v1/import/prometheus", capacity: 4MiB/s, relay: true}
`

// TestRelayMemberTakesItsAssignmentFromTheRing runs two agents and a relay:
// every one gets the ring's answer for the live agents and relays; the
// relay lists only vm and weighs the agent it carries; the budgets on vm
// add up to its capacity; when the relay stops, the agents are computed
// again without it.
func TestRelayMemberTakesItsAssignmentFromTheRing(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	st, err := configstore.New(cli, "ct", func(b []byte) error { _, err := config.ParseCluster(b); return err })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rev, err := st.Bootstrap(ctx, []byte(relayDoc), false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.ParseCluster([]byte(relayDoc))
	if err != nil {
		t.Fatal(err)
	}
	l := &latest{u: map[string]Update{}}
	startMemberOf(t, ctx, e.Endpoints, keys.Agent, "a1", l)
	startMemberOf(t, ctx, e.Endpoints, keys.Agent, "a2", l)
	stopRelay := startMemberOf(t, ctx, e.Endpoints, keys.Relay, "r1", l)

	want := expectedAssignments(t, c, []string{"a1", "a2"}, []string{"r1"})
	converge(t, l, rev, want)
	r := want["r1"]
	if !slices.Equal(r.Upstreams, []string{"vm"}) {
		t.Fatalf("relay r1: upstreams %q; want only vm", r.Upstreams)
	}
	carried := 0
	onVM := map[string]ring.Assignment{}
	for _, a := range want {
		switch a.Upstreams[0] {
		case "relay-up":
			carried++
		case "vm":
			onVM[a.Node] = a
		}
	}
	if carried != 1 || len(onVM) != 2 {
		t.Fatalf("test setup: %d agents on relay-up, %d members on vm (%v); want 1 and 2 (a2, r1)", carried, len(onVM), want)
	}
	if r.Weight != int64(carried) {
		t.Fatalf("relay r1 weighs %d; want %d, the agents on relay upstreams", r.Weight, carried)
	}
	var sum, weights int64
	for _, a := range onVM {
		sum += a.Budget
		weights += a.Weight
	}
	if sum != 12<<20 {
		t.Fatalf("budgets on vm add up to %d; want its capacity %d", sum, 12<<20)
	}
	if lo := int64(12<<20) * r.Weight / weights; r.Budget != lo && r.Budget != lo+1 {
		t.Fatalf("relay r1: budget %d; want %d (weight %d of %d on vm)", r.Budget, lo, r.Weight, weights)
	}
	u, _ := l.get("r1")
	if !slices.Equal(u.Agent.Ship.Upstreams, []string{c.Upstreams[0].URL}) || u.Agent.Ship.Strategy != config.StrategyOrdered ||
		int64(u.Agent.Limit.BytesPerSecond) != r.Budget {
		t.Fatalf("relay r1: settings do not follow the assignment: %+v / %+v", u.Agent.Ship, u.Agent.Limit)
	}

	// The relay leaves: the agents are computed again, a2 alone on vm.
	stopRelay()
	want = expectedAssignments(t, c, []string{"a1", "a2"}, nil)
	converge(t, l, rev, want)
	if a2 := want["a2"]; a2.Budget != 12<<20 {
		t.Fatalf("a2 without the relay: %+v; want all of vm", a2)
	}
}

// expectedAssignments is the ring's answer for c and these members, as
// every member computes it when no upstream is down.
func expectedAssignments(t *testing.T, c config.Cluster, agents, relays []string) map[string]ring.Assignment {
	t.Helper()
	in := ring.Input{Fallbacks: c.Ring.Fallbacks, Agents: agents, Relays: relays,
		Ring: ring.Config{PartitionCount: c.Ring.Partitions, ReplicationFactor: c.Ring.Replicas, Load: c.Ring.LoadFactor}}
	for _, e := range c.Endpoints() {
		in.Upstreams = append(in.Upstreams, ring.Upstream{Name: e.Name, URL: e.URL, Capacity: e.Capacity, Relay: e.Relay})
	}
	out, err := ring.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// converge waits until the latest update of every member of want is at
// rev with exactly its assignment.
func converge(t *testing.T, l *latest, rev int64, want map[string]ring.Assignment) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the members at revision %d with %v", rev, want), func() bool {
		for node, a := range want {
			if u, ok := l.get(node); !ok || u.Revision != rev || !reflect.DeepEqual(u.Assignment, a) {
				return false
			}
		}
		return true
	})
}

// TestComputeKinds checks compute without etcd: a relay counts before its
// registration shows, and a node registered as both kinds is an error,
// not a guess.
func TestComputeKinds(t *testing.T) {
	c, err := config.ParseCluster([]byte(relayDoc))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Cluster: "ct", Node: "r1", Kind: keys.Relay, Etcd: etcdclient.Config{Endpoints: []string{"127.0.0.1:2379"}}}, config.DefaultAgent(), nil)
	if err != nil {
		t.Fatal(err)
	}
	live := members{{keys.Agent, "a1"}: {}, {keys.Agent, "a2"}: {}}
	u, err := m.compute(c, 3, live, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := expectedAssignments(t, c, []string{"a1", "a2"}, []string{"r1"})["r1"]; !reflect.DeepEqual(u.Assignment, want) || u.Revision != 3 {
		t.Fatalf("relay before its registration shows: %+v; want %+v", u.Assignment, want)
	}
	live[memberID{keys.Relay, "a1"}] = liveMember{}
	if _, err := m.compute(c, 3, live, nil); err == nil || !strings.Contains(err.Error(), `node "a1" is both an agent and a relay`) {
		t.Fatalf("compute with a1 registered twice = %v", err)
	}
}

// TestWithoutGoneBothKinds checks that the gossip's verdict drops relays as
// it drops agents, and that a restarted one counts again.
func TestWithoutGoneBothKinds(t *testing.T) {
	reg := func(addr string) liveMember { return liveMember{Address: addr} }
	live := members{{keys.Agent, "a1"}: reg("a1:1"), {keys.Relay, "r1"}: reg("r1:1"), {keys.Relay, "r2"}: reg("r2:1")}
	v := newView("self")
	v.observe([]string{"a1", "r1", "r2", "self"}, nil, live, time.Now())
	v.withoutGone(live) // records each registration the gossip saw alive
	v.observe([]string{"r2", "self"}, nil, live, time.Now())
	got := ids(v.withoutGone(live))
	if want := []memberID{{keys.Relay, "r2"}}; !slices.Equal(got, want) {
		t.Fatalf("live after a1 and r1 died in the gossip: %v; want %v", got, want)
	}
	live[memberID{keys.Relay, "r1"}] = reg("r1:2") // restarted, registered again
	got = ids(v.withoutGone(live))
	if want := []memberID{{keys.Relay, "r1"}, {keys.Relay, "r2"}}; !slices.Equal(got, want) {
		t.Fatalf("live after r1 restarted: %v; want %v", got, want)
	}
}

// ids returns the members' ids, sorted by kind then node.
func ids(ms members) []memberID {
	return slices.SortedFunc(maps.Keys(ms), func(a, b memberID) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Node, b.Node))
	})
}
