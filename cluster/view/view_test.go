package view

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

const testDoc = `upstreams:
  - {name: vm-a, url: "http://10.0.0.1:8428/api/v1/import/prometheus", capacity: 1MiB/s}
  - {name: vm-b, url: "http://user:pw@10.0.0.2:8428/api/v1/import/prometheus?extra_label=x", capacity: 2MiB/s}
  - {name: r1, url: "http://relay1:9478/api/v1/import/prometheus", capacity: 1MiB/s, relay: true}
`

// testState is a cluster of three agents and a relay: a1 and a2 write to
// vm-a first, a3 to r1, the relay to vm-b; a4 registered without a status.
func testState(t *testing.T) *State {
	t.Helper()
	space, err := keys.New("c1")
	if err != nil {
		t.Fatal(err)
	}
	st := NewState(space)
	rev := int64(10)
	put := func(key string, v any) {
		t.Helper()
		data, ok := v.([]byte)
		if !ok {
			var err error
			if data, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		rev++
		if !st.Apply(key, data, false, rev) {
			t.Fatalf("Apply(%s) changed nothing", key)
		}
	}
	put(space.Config(), []byte(testDoc))
	member := func(kind keys.Kind, node, http string) {
		k, err := space.Member(kind, node)
		if err != nil {
			t.Fatal(err)
		}
		put(k, map[string]any{"address": "127.0.0.1:7946", "http": http, "version": "v1", "kind": kind})
	}
	status := func(node string, s cluster.Status) {
		k, err := space.Status(node)
		if err != nil {
			t.Fatal(err)
		}
		put(k, s)
	}
	healthy := func(url string, ok bool) cluster.EndpointHealth {
		return cluster.EndpointHealth{URL: url, Healthy: ok, Recent: true}
	}
	vmA, vmB := "http://10.0.0.1:8428/api/v1/import/prometheus", "http://10.0.0.2:8428/api/v1/import/prometheus"
	for _, n := range []string{"a3", "a1", "a2", "a4"} {
		member(keys.Agent, n, "")
	}
	member(keys.Relay, "relay1", "172.18.0.5:9478")
	status("a1", cluster.Status{ConfigRevision: 11, Upstreams: []string{"vm-a", "vm-b"}, BudgetBytesPerSecond: 600 << 10,
		Endpoints: []cluster.EndpointHealth{healthy(vmA, true), healthy(vmB, false)}, Down: []string{"vm-b"}})
	status("a2", cluster.Status{ConfigRevision: 11, Upstreams: []string{"vm-a", "vm-b"}, BudgetBytesPerSecond: 424 << 10,
		Endpoints: []cluster.EndpointHealth{healthy(vmA, true), {URL: vmB, Healthy: false}}})
	status("a3", cluster.Status{ConfigRevision: 9, Upstreams: []string{"r1", "vm-a"}, BudgetBytesPerSecond: 1 << 20,
		QueueBatches: 7, LastError: "boom", Endpoints: []cluster.EndpointHealth{healthy(vmB, true)}})
	status("relay1", cluster.Status{ConfigRevision: 11, Upstreams: []string{"vm-b", "vm-a"}, BudgetBytesPerSecond: 2 << 20})
	return st
}

func TestBuild(t *testing.T) {
	v := Build("c1", testState(t))
	if v.Name != "c1" || v.ConfigRevision != 11 || v.ConfigError != "" || v.EtcdRevision != 20 {
		t.Fatalf("header: %+v", v)
	}
	var agents []string
	for _, a := range v.Agents {
		agents = append(agents, a.Node)
	}
	if !slices.Equal(agents, []string{"a1", "a2", "a3", "a4"}) || len(v.Relays) != 1 {
		t.Fatalf("agents %v, relays %+v", agents, v.Relays)
	}
	if a4 := v.Agents[3]; a4.Reported || a4.Upstreams == nil || len(a4.Upstreams) != 0 {
		t.Fatalf("a4 (no status): %+v", a4)
	}
	if a3 := v.Agents[2]; !a3.Reported || a3.QueueBatches != 7 || a3.LastError != "boom" || a3.ConfigRevision != 9 {
		t.Fatalf("a3: %+v", a3)
	}
	want := []Upstream{
		{Name: "vm-a", URL: "http://10.0.0.1:8428/api/v1/import/prometheus", CapacityBytesPerSecond: 1 << 20,
			Agents: 2, BudgetBytesPerSecond: 1 << 20, Healthy: true, Reports: 2},
		// a1 sees it unhealthy, a3 healthy, a2's view is not recent: one
		// of two is not most; a1's gossip count holds it down.
		{Name: "vm-b", URL: "http://user:pw@10.0.0.2:8428/api/v1/import/prometheus?extra_label=x", CapacityBytesPerSecond: 2 << 20,
			Relays: 1, BudgetBytesPerSecond: 2 << 20, Healthy: true, Reports: 2, Unhealthy: 1, DownVotes: 1},
		// relay1's HTTP address has another host, but its node name is
		// the URL's host and the ports agree.
		{Name: "r1", URL: "http://relay1:9478/api/v1/import/prometheus", Relay: true, CapacityBytesPerSecond: 1 << 20,
			Agents: 1, BudgetBytesPerSecond: 1 << 20, Healthy: true, Served: []string{"relay1"}},
	}
	for i, u := range v.Upstreams {
		got, _ := json.Marshal(u)
		exp, _ := json.Marshal(want[i])
		if string(got) != string(exp) {
			t.Errorf("upstream %d:\n got %s\nwant %s", i, got, exp)
		}
	}
}

func TestBuildHealthRule(t *testing.T) {
	f := func(views []bool, want bool) {
		t.Helper()
		st := testState(t)
		for n := range st.Status {
			delete(st.Status, n)
		}
		for i, ok := range views {
			st.Status[string(rune('a'+i))] = cluster.Status{Endpoints: []cluster.EndpointHealth{
				{URL: "http://10.0.0.1:8428/api/v1/import/prometheus", Healthy: ok, Recent: true}}}
			st.Members[MemberID{keys.Agent, string(rune('a' + i))}] = st.Members[MemberID{keys.Agent, "a1"}]
		}
		if got := Build("c1", st).Upstreams[0].Healthy; got != want {
			t.Errorf("views %v: healthy %v, want %v", views, got, want)
		}
	}
	f(nil, true)
	f([]bool{false}, false)
	f([]bool{true, false}, true)
	f([]bool{false, false, true}, false)
	f([]bool{true, true, false}, true)
}

func TestApply(t *testing.T) {
	st := testState(t)
	space, _ := keys.New("c1")
	if st.Apply(space.Prefix()+"targets/job/0", []byte("x"), false, 30) {
		t.Error("a targets key changed the state")
	}
	if !st.Apply(space.Config(), []byte("upstreams: [\n"), false, 31) {
		t.Fatal("an invalid config changed nothing")
	}
	v := Build("c1", st)
	if v.ConfigRevision != 31 || v.ConfigError == "" || len(v.Upstreams) != 3 {
		t.Fatalf("after an invalid config: revision %d, error %q, %d upstreams (want the last good ones)", v.ConfigRevision, v.ConfigError, len(v.Upstreams))
	}
	key, _ := space.Member(keys.Agent, "a1")
	st.Apply(key, nil, true, 32)
	status, _ := space.Status("a1")
	st.Apply(status, nil, true, 32)
	v = Build("c1", st)
	if len(v.Agents) != 3 || v.Agents[0].Node != "a2" || v.Upstreams[0].Agents != 1 {
		t.Fatalf("after a1 left: %+v", v.Agents)
	}
	if st.Apply(status, []byte("not json"), false, 33) {
		t.Error("a status that does not parse changed the state")
	}
}
