package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// memberValue is the value of a member key as a session writes it.
func memberValue(t testing.TB, addr string, start time.Time, labels map[string]string) []byte {
	t.Helper()
	v, err := json.Marshal(session.Member{Address: addr, Version: "v1", Labels: labels, StartTime: start, Kind: keys.Agent})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMemberWatchLabelChange runs the member watch on etcd: a member that
// registers again with other labels shows them, the members that share its
// old labels keep theirs, and a member without labels ({}) or with none
// at all (null) keeps that difference, which scraping's local jobs see.
func TestMemberWatchLabelChange(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	space, err := keys.New("ct")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	start := time.Now()
	put := func(node string, value []byte) {
		t.Helper()
		key, err := space.Member(keys.Agent, node)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, key, string(value)); err != nil {
			t.Fatal(err)
		}
	}
	zoneA := map[string]string{"zone": "a", "env": "prod"}
	for i := range 3 {
		put(fmt.Sprintf("a%d", i), memberValue(t, fmt.Sprintf("10.0.0.%d:7946", i), start, zoneA))
	}
	put("bare", memberValue(t, "10.0.1.1:7946", start, map[string]string{}))
	put("old", memberValue(t, "10.0.1.2:7946", start, nil))
	w := watchMembers(ctx, cli, space, slog.New(slog.DiscardHandler), new(atomic.Uint64))
	var live members
	waitUntil(t, "the five members", func() bool { live = w.Snapshot(); return len(live) == 5 })
	labelsOf := func(live members, node string) map[string]string {
		return live[memberID{keys.Agent, node}].Labels()
	}
	for i := range 3 {
		if got := labelsOf(live, fmt.Sprintf("a%d", i)); !maps.Equal(got, zoneA) {
			t.Fatalf("a%d's labels %v; want %v", i, got, zoneA)
		}
	}
	if got := labelsOf(live, "bare"); got == nil || len(got) != 0 {
		t.Fatalf("labels of a member registered with {}: %#v; want an empty map", got)
	}
	if got := labelsOf(live, "old"); got != nil {
		t.Fatalf("labels of a member registered with null: %#v; want nil", got)
	}
	before := live

	zoneB := map[string]string{"zone": "b", "env": "prod"}
	restart := start.Add(time.Minute)
	put("a1", memberValue(t, "10.0.0.1:7946", restart, zoneB))
	waitUntil(t, "a1's new labels", func() bool { live = w.Snapshot(); return maps.Equal(labelsOf(live, "a1"), zoneB) })
	for _, n := range []string{"a0", "a2"} {
		if got := labelsOf(live, n); !maps.Equal(got, zoneA) {
			t.Errorf("%s's labels after a1 changed its own: %v; want %v", n, got, zoneA)
		}
	}
	if got, want := live[memberID{keys.Agent, "a1"}].id(), (regID{"10.0.0.1:7946", restart.Unix(), int32(restart.Nanosecond()), true}); got != want {
		t.Errorf("a1's registration %+v; want %+v", got, want)
	}
	// The snapshot taken before is the loop's until its next recompute:
	// the watch changed a copy.
	if got := labelsOf(before, "a1"); !maps.Equal(got, zoneA) {
		t.Errorf("the earlier snapshot changed: a1's labels %v; want %v", got, zoneA)
	}
	if got := before[memberID{keys.Agent, "a1"}].id().startSec; got != start.Unix() {
		t.Errorf("the earlier snapshot changed: a1 started at %d; want %d", got, start.Unix())
	}
}

// TestLiveWatchApply checks the set's bookkeeping over events as etcd
// delivers them: members that share labels share one map, a value that
// cannot be parsed leaves the member as it was, and the label sets no
// member uses any longer are dropped.
func TestLiveWatchApply(t *testing.T) {
	space, err := keys.New("ct")
	if err != nil {
		t.Fatal(err)
	}
	w := newLiveWatch(nil)
	key := func(node string) []byte {
		k, err := space.Member(keys.Agent, node)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(k)
	}
	putEv := func(node string, value []byte) *clientv3.Event {
		return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: key(node), Value: value}}
	}
	start := time.Now()
	var kvs []*mvccpb.KeyValue
	for i := range 4 {
		kvs = append(kvs, &mvccpb.KeyValue{Key: key(fmt.Sprintf("n%d", i)),
			Value: memberValue(t, fmt.Sprintf("10.0.0.%d:7946", i), start, map[string]string{"zone": fmt.Sprint(i % 2)})})
	}
	kvs = append(kvs, &mvccpb.KeyValue{Key: []byte(space.Members() + "agents/../x"), Value: kvs[0].Value})
	w.reset(space, kvs)
	live := w.Snapshot()
	if len(live) != 4 || len(w.labels.sets) != 2 {
		t.Fatalf("%d members, %d label sets; want 4 and 2", len(live), len(w.labels.sets))
	}
	n0, n2 := live[memberID{keys.Agent, "n0"}].labels, live[memberID{keys.Agent, "n2"}].labels
	if n0 != n2 || n0.refs != 2 || n0.m["zone"] != "0" {
		t.Fatalf("n0 and n2 (zone 0): label sets %p and %p, %d uses, zone %q; want one, 2, \"0\"", n0, n2, n0.refs, n0.m["zone"])
	}

	w.apply(space, []*clientv3.Event{
		putEv("n1", []byte(`{"address":5}`)), // refused: n1 stays
		putEv("n0", memberValue(t, "10.0.0.9:7946", start, map[string]string{"zone": "1"})),
		putEv("n2", memberValue(t, "10.0.0.2:7946", start, map[string]string{"zone": "2", "rack": "r1"})),
		{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: key("n3")}},
		{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: key("never")}},
	})
	live = w.Snapshot()
	want := map[string]struct {
		addr string
		zone string
	}{"n0": {"10.0.0.9:7946", "1"}, "n1": {"10.0.0.1:7946", "1"}, "n2": {"10.0.0.2:7946", "2"}}
	if len(live) != len(want) {
		t.Fatalf("members %v; want %v", ids(live), want)
	}
	for n, wm := range want {
		m := live[memberID{keys.Agent, n}]
		if m.Address != wm.addr || m.Labels()["zone"] != wm.zone {
			t.Errorf("%s: %s %v; want %s zone %s", n, m.Address, m.Labels(), wm.addr, wm.zone)
		}
	}
	if got := live[memberID{keys.Agent, "n2"}].Labels(); !maps.Equal(got, map[string]string{"zone": "2", "rack": "r1"}) {
		t.Errorf("n2's labels %v", got)
	}
	// zone 0 is used by no one now; zone 1 by n0 and n1; n2's own set.
	if len(w.labels.sets) != 2 || n0.refs != 0 {
		t.Errorf("%d label sets, zone 0 used %d times; want 2, 0", len(w.labels.sets), n0.refs)
	}
	if l0, l1 := live[memberID{keys.Agent, "n0"}].labels, live[memberID{keys.Agent, "n1"}].labels; l0 != l1 || l0.refs != 2 {
		t.Errorf("n0 and n1 (zone 1) share no label set: %p, %p", l0, l1)
	}
	if !maps.Equal(n0.m, map[string]string{"zone": "0"}) {
		t.Errorf("a dropped label set changed: %v", n0.m)
	}
}

// TestLabelTableCollisions checks interning when label sets share a
// hash: each keeps its own labels and is dropped alone.
func TestLabelTableCollisions(t *testing.T) {
	var lt labelTable
	a := lt.intern([]session.Label{{Name: "k", Value: "a"}})
	// Chain b and c under a's hash, as a collision would.
	b := &labelSet{m: map[string]string{"k": "b"}, hash: a.hash, refs: 1, next: a}
	c := &labelSet{m: map[string]string{"k": "c"}, hash: a.hash, refs: 1, next: b}
	lt.sets[a.hash] = c
	if got := lt.intern([]session.Label{{Name: "k", Value: "a"}}); got != a || a.refs != 2 {
		t.Fatalf("a interned again: %p (%d uses); want %p", got, a.refs, a)
	}
	lt.release(b)
	if lt.sets[a.hash] != c || c.next != a {
		t.Fatalf("after releasing the middle of the chain: head %v, next %v", lt.sets[a.hash].m, c.next.m)
	}
	lt.release(c)
	lt.release(a)
	if lt.sets[a.hash] != a || a.refs != 1 {
		t.Fatalf("after releasing the head: %v", lt.sets[a.hash])
	}
	lt.release(a)
	if len(lt.sets) != 0 {
		t.Fatalf("%d sets left; want 0", len(lt.sets))
	}
	if lt.intern(nil) != nil || lt.intern([]session.Label{}) != emptyLabels {
		t.Fatal("nil or empty labels interned as a set")
	}
}
