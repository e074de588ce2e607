package session

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// BenchmarkIdleSessions measures the etcd requests per second that 1,000
// idle members cost: lease keep-alives and rate-limited status writes, with
// the default TTL (10s) and status interval (10s). It counts the gRPC
// messages the embedded etcd server received over 20 s, after start-up.
func BenchmarkIdleSessions(b *testing.B) {
	const members = 1000
	const window = 20 * time.Second
	e := etcdtest.StartEtcd(b)
	cli := etcdtest.NewEtcdClient(b, e.Endpoints)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	sessions := make([]*Session, members)
	for i := range sessions {
		s, err := New(cli, "idle", fmt.Sprintf("n%04d", i), Member{Kind: keys.Agent})
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
		wg.Go(func() { _ = s.Run(ctx) })
	}
	for _, s := range sessions {
		if _, err := s.Await(ctx, func(i Info) bool { return i.Phase == Registered }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		before := received(b)
		end := time.Now().Add(window)
		for time.Now().Before(end) {
			for i, s := range sessions {
				// What an idle agent reports: the same status with a new time.
				s.SetStatus(fmt.Appendf(nil, `{"node":"n%04d","updated":%d}`, i, time.Now().UnixNano()))
			}
			time.Sleep(time.Second)
		}
		b.ReportMetric((received(b)-before)/window.Seconds(), "etcd-requests/s")
	}
}

// received sums the gRPC messages the in-process etcd server received.
func received(b *testing.B) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_msg_received_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}
