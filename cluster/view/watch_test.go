package view

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// views collects what a Watcher publishes.
type views struct {
	mu   sync.Mutex
	all  []Cluster
	seen chan struct{}
}

func (vs *views) publish(v Cluster) {
	vs.mu.Lock()
	vs.all = append(vs.all, v)
	vs.mu.Unlock()
	select {
	case vs.seen <- struct{}{}:
	default:
	}
}

// wait returns the first view that satisfies cond, from the latest one
// published (the state now) on, and how long after the call it came.
func (vs *views) wait(t *testing.T, what string, timeout time.Duration, cond func(Cluster) bool) (Cluster, time.Duration) {
	t.Helper()
	start := time.Now()
	vs.mu.Lock()
	from := max(0, len(vs.all)-1)
	vs.mu.Unlock()
	deadline := time.After(timeout)
	for {
		vs.mu.Lock()
		for _, v := range vs.all[from:] {
			if cond(v) {
				vs.mu.Unlock()
				return v, time.Since(start)
			}
		}
		from = len(vs.all)
		vs.mu.Unlock()
		select {
		case <-vs.seen:
		case <-deadline:
			vs.mu.Lock()
			var errs []string
			for _, v := range vs.all {
				errs = append(errs, fmt.Sprintf("%q/%d", v.Error, len(v.Upstreams)))
			}
			vs.mu.Unlock()
			t.Fatalf("no view with %s within %v; views (error/upstreams): %v", what, timeout, errs)
		}
	}
}

// TestWatcher follows a cluster in a real etcd: the first view shows what
// is there, a member that registers, a status write, a lease that expires
// and a new config revision each show within 2 s, and an invalid config
// keeps the upstreams of the last good one.
func TestWatcher(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	cli := etcd.Client(t)
	space, _ := keys.New("w1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put := func(key, value string, opts ...clientv3.OpOption) {
		t.Helper()
		if _, err := cli.Put(ctx, key, value, opts...); err != nil {
			t.Fatal(err)
		}
	}
	put(space.Config(), testDoc)
	w, err := NewWatcher(DefaultWatcherConfig(), cli, space, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	vs := &views{seen: make(chan struct{}, 1)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, vs.publish) }()
	t.Cleanup(func() { stop(); <-done })

	v, _ := vs.wait(t, "the config", 10*time.Second, func(v Cluster) bool { return len(v.Upstreams) == 3 })
	if v.Error != "" || len(v.Agents) != 0 {
		t.Fatalf("first view: %+v", v)
	}
	lease, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	memberKey, _ := space.Member(keys.Agent, "n1")
	statusKey, _ := space.Status("n1")
	put(memberKey, `{"address":"127.0.0.1:1","version":"v1","kind":"agent"}`, clientv3.WithLease(lease.ID))
	_, took := vs.wait(t, "n1 registered", 2*time.Second, func(v Cluster) bool { return len(v.Agents) == 1 })
	t.Logf("registration shown after %v", took)
	st, _ := json.Marshal(cluster.Status{ConfigRevision: 5, Upstreams: []string{"vm-b", "vm-a"}, BudgetBytesPerSecond: 1000})
	put(statusKey, string(st), clientv3.WithLease(lease.ID))
	v, took = vs.wait(t, "n1's status", 2*time.Second, func(v Cluster) bool { return len(v.Agents) == 1 && v.Agents[0].Reported })
	if v.Upstreams[1].Agents != 1 || v.Upstreams[1].BudgetBytesPerSecond != 1000 {
		t.Fatalf("vm-b after n1's status: %+v", v.Upstreams[1])
	}
	t.Logf("status shown after %v", took)

	resp, err := cli.Put(ctx, space.Config(), testDoc+"ring: {fallbacks: 2}\n")
	if err != nil {
		t.Fatal(err)
	}
	_, took = vs.wait(t, "the new config revision", 2*time.Second, func(v Cluster) bool { return v.ConfigRevision == resp.Header.Revision })
	t.Logf("config revision %d shown after %v", resp.Header.Revision, took)

	put(space.Config(), "upstreams: {")
	v, _ = vs.wait(t, "the invalid config", 2*time.Second, func(v Cluster) bool { return v.ConfigError != "" })
	if len(v.Upstreams) != 3 {
		t.Fatalf("an invalid config dropped the upstreams: %+v", v.Upstreams)
	}

	// The lease is not kept alive: it expires within its 1 s TTL (etcd
	// may take a little longer), and both keys go in one revision.
	v, took = vs.wait(t, "n1 gone", 5*time.Second, func(v Cluster) bool { return len(v.Agents) == 0 })
	if v.Upstreams[1].Agents != 0 {
		t.Fatalf("vm-b still counts n1: %+v", v.Upstreams[1])
	}
	t.Logf("lease expiry shown %v after the invalid config", took)
}

// TestWatcherOutage: while etcd is down the watcher says so on the last
// view it had, and it follows the cluster again once etcd is back.
func TestWatcherOutage(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	cli := etcd.Client(t)
	space, _ := keys.New("w2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.Put(ctx, space.Config(), testDoc); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(WatcherConfig{Interval: 100 * time.Millisecond, Probe: 200 * time.Millisecond}, cli, space, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	vs := &views{seen: make(chan struct{}, 1)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx, vs.publish) }()
	t.Cleanup(func() { stop(); <-done })
	vs.wait(t, "the config", 10*time.Second, func(v Cluster) bool { return len(v.Upstreams) == 3 })

	etcd.Stop()
	v, _ := vs.wait(t, "an error", 30*time.Second, func(v Cluster) bool { return v.Error != "" })
	if len(v.Upstreams) != 3 {
		t.Fatalf("the view during the outage lost the upstreams: %+v", v)
	}
	etcd.Restart(t)
	key, _ := space.Member(keys.Agent, "back")
	deadline := time.Now().Add(20 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Put(pctx, key, `{"kind":"agent"}`)
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not take a write after its restart: %v", err)
		}
	}
	vs.wait(t, "the member written after the outage", 20*time.Second, func(v Cluster) bool {
		return v.Error == "" && len(v.Agents) == 1
	})
}

func TestWatcherConfigValidate(t *testing.T) {
	for _, c := range []WatcherConfig{{Interval: 0, Probe: time.Second}, {Interval: 2 * time.Second, Probe: time.Second}, {Interval: time.Millisecond, Probe: time.Millisecond}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := DefaultWatcherConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
