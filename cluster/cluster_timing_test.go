package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// BenchmarkConfigApply measures, for 100 members against one etcd, the
// time from a config write until each member has handed out the new
// settings; it reports the p50 and p99 over all members and writes.
func BenchmarkConfigApply(b *testing.B) {
	const members = 100
	e := etcdtest.StartEtcd(b)
	cli := etcdtest.NewEtcdClient(b, e.Endpoints)
	st, err := configstore.New(cli, "bench", func(d []byte) error { _, err := config.ParseCluster(d); return err })
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rev, err := st.Bootstrap(ctx, doc("10MiB/s"), false)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	arrived := map[int64][]time.Time{} // revision -> arrival times
	var wg sync.WaitGroup
	for i := range members {
		gc := gossip.DefaultConfig()
		gc.BindAddr, gc.BindPort = "127.0.0.1", 0
		local := config.DefaultAgent()
		m, err := New(Config{Cluster: "bench", Node: fmt.Sprintf("m%03d", i), Kind: keys.Agent,
			Etcd: etcdclient.Config{Endpoints: e.Endpoints}, Gossip: gc}, local, nil)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { _ = m.Run(ctx) })
		wg.Go(func() {
			seen := map[int64]bool{}
			for {
				select {
				case u := <-m.Updates():
					if !seen[u.Revision] {
						seen[u.Revision] = true
						mu.Lock()
						arrived[u.Revision] = append(arrived[u.Revision], time.Now())
						mu.Unlock()
					}
				case <-ctx.Done():
					return
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	all := func(rev int64) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived[rev]) == members
	}
	waitUntil(b, "100 members at the first revision", func() bool { return all(rev) })
	write := func(i int) time.Time {
		start := time.Now()
		rev, err = st.Set(ctx, doc(fmt.Sprintf("%dMiB/s", 11+i%50)), rev)
		if err != nil {
			b.Fatal(err)
		}
		waitUntil(b, "100 members at the new revision", func() bool { return all(rev) })
		return start
	}
	// A fleet that just started is busy: 100 registrations, gossip joins,
	// first status writes. Measure the steady state: warm up until a
	// change reaches every member within a second.
	for i := 0; i < 30 && time.Since(write(i)) > time.Second; i++ {
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := write(i)
		mu.Lock()
		for _, at := range arrived[rev] {
			lat = append(lat, at.Sub(start))
		}
		mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
