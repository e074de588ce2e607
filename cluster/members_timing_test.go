package cluster

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
)

// benchFleet is the member count of the member-set benchmarks.
const benchFleet = 10000

// benchLabels are the label variants of the member-set benchmarks: none
// (no --labels: the value holds "labels":{}), and three labels that many
// members share (zone of 3, rack of 40: 120 distinct sets).
var benchLabels = []struct {
	name   string
	labels func(i int) map[string]string
}{
	{"labels=none", func(int) map[string]string { return map[string]string{} }},
	{"labels=3", func(i int) map[string]string {
		return map[string]string{"env": "prod", "zone": fmt.Sprintf("z%d", i%3), "rack": fmt.Sprintf("r%02d", i%40)}
	}},
}

// benchMembers returns n member keys with their values as a session
// registers them (gossip and HTTP address, version, labels, start time),
// each key and value in byte slices of its own as etcd's client decodes
// them; restart is the value the same member writes after a restart.
func benchMembers(tb testing.TB, space keys.Space, n int, labels func(int) map[string]string) (kvs []*mvccpb.KeyValue, restart [][]byte) {
	tb.Helper()
	start := time.Now().Add(-time.Hour)
	value := func(i int, start time.Time) []byte {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		v, err := json.Marshal(session.Member{Address: ip + ":7946", HTTP: ip + ":9477", Version: "v0.9.0",
			Labels: labels(i), StartTime: start, Kind: keys.Agent})
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	for i := range n {
		key, err := space.Member(keys.Agent, fmt.Sprintf("host-%05d.dc1.example.com", i))
		if err != nil {
			tb.Fatal(err)
		}
		kvs = append(kvs, &mvccpb.KeyValue{Key: []byte(key), Value: value(i, start.Add(time.Duration(i)*time.Millisecond))})
		restart = append(restart, value(i, start.Add(time.Hour+time.Duration(i)*time.Millisecond)))
	}
	return kvs, restart
}

// heapLive returns the bytes of live heap after a collection: two, so
// that what sync.Pools dropped at the first is gone.
func heapLive() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkMemberSet is what the member set costs a member of a fleet of
// benchFleet: the bytes it holds per member between recomputes (the
// watch's set and the loop's copy, held-B/member), what it holds while
// events arrive after a recompute took its copy (churn-held-B/member), and
// per membership event (an op: a member's key deleted or written again as
// a rolling restart does) its time and allocations.
//
//	go test -run '^$' -bench MemberSet -count 6 ./cluster/
func BenchmarkMemberSet(b *testing.B) {
	space, err := keys.New("bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, lv := range benchLabels {
		b.Run(lv.name, func(b *testing.B) {
			kvs, restart := benchMembers(b, space, benchFleet, lv.labels)
			before := heapLive()
			w := newLiveWatch(nil)
			w.reset(space, kvs)
			live := w.Snapshot() // the loop's copy, kept until the next recompute
			held := heapLive()
			w.apply(space, []*clientv3.Event{{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: kvs[0].Key}}})
			churn := heapLive()
			w.apply(space, []*clientv3.Event{{Type: clientv3.EventTypePut, Kv: kvs[0]}})
			// Each member leaves (its key deleted) and comes back with a new
			// start time, then again with the old one.
			evs := make([]*clientv3.Event, 0, 2*benchFleet)
			for i, kv := range kvs {
				evs = append(evs,
					&clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: kv.Key}},
					&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: kv.Key, Value: restart[i]}},
					&clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: kv.Key}},
					&clientv3.Event{Type: clientv3.EventTypePut, Kv: kv})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				w.apply(space, evs[i%len(evs):i%len(evs)+1])
			}
			b.StopTimer()
			runtime.KeepAlive(live)
			// After the loop: ResetTimer drops the metrics reported before.
			b.ReportMetric(float64(held-before)/benchFleet, "held-B/member")
			b.ReportMetric(float64(churn-before)/benchFleet, "churn-held-B/member")
		})
	}
}

// BenchmarkMemberRecompute is the member set's part of one recompute in a
// fleet of benchFleet, every member alive in the gossip: after an event,
// the loop's copy of the set, the view's look at the gossip, the members
// it does not hold dead, the names of the ring's input and the agents
// that scraping places targets on. Ring.Compute's own cost is ring's
// BenchmarkCompute. It reports what the view of the gossip holds per
// member (view-held-B/member).
//
//	go test -run '^$' -bench MemberRecompute -count 6 ./cluster/
func BenchmarkMemberRecompute(b *testing.B) {
	space, err := keys.New("bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, lv := range benchLabels {
		b.Run(lv.name, func(b *testing.B) {
			kvs, restart := benchMembers(b, space, benchFleet, lv.labels)
			w := newLiveWatch(nil)
			w.reset(space, kvs)
			live := w.Snapshot()
			var alive []string
			for id := range live {
				alive = append(alive, id.Node)
			}
			before := heapLive()
			v := newView("host-00000.dc1.example.com")
			v.observe(alive, nil, live, time.Now())
			v.withoutGone(live)
			viewHeld := float64(heapLive()-before) / benchFleet
			runtime.KeepAlive(live) // the first copy counts in neither
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				kv := kvs[i%len(kvs)]
				value := kv.Value
				if i/len(kvs)%2 == 0 {
					value = restart[i%len(kvs)]
				}
				w.apply(space, []*clientv3.Event{{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: kv.Key, Value: value}}})
				live = w.Snapshot()
				v.observe(alive, nil, live, time.Now())
				in := v.withoutGone(live)
				byKind := map[keys.Kind][]string{}
				for id := range in {
					byKind[id.Kind] = append(byKind[id.Kind], id.Node)
				}
				if agents := liveAgents(in); len(agents) != benchFleet || len(byKind[keys.Agent]) != benchFleet {
					b.Fatalf("%d agents, %d names; want %d", len(agents), len(byKind[keys.Agent]), benchFleet)
				}
			}
			b.ReportMetric(viewHeld, "view-held-B/member")
		})
	}
}
