package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// TestCampaign campaigns beside etcd's concurrency.Election, as members
// of two versions do in one cluster: a campaign waits while an older
// concurrency candidate leads and wins once it resigns; a concurrency
// candidate then waits for the campaign's key to be resigned. A second
// campaign with the same lease finds its key (the same create revision),
// and with another value replaces the value.
func TestCampaign(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	ctx := t.Context()
	space, _ := keys.New("ct")
	prefix := space.DiscoveryElection()
	grant := func() clientv3.LeaseID {
		t.Helper()
		l, err := cli.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	cs, err := concurrency.NewSession(cli)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	old := concurrency.NewElection(cs, prefix)
	if err := old.Campaign(ctx, "old"); err != nil {
		t.Fatal(err)
	}

	lease := grant()
	type result struct {
		key string
		rev int64
		err error
	}
	won := make(chan result, 1)
	go func() {
		key, rev, err := campaign(ctx, cli, prefix, lease, "new")
		won <- result{key, rev, err}
	}()
	// Once the campaign's key is there, it is the younger candidate and
	// waits: it has not won while the older one leads.
	key := fmt.Sprintf("%s/%x", prefix, lease)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the campaign put no candidate key within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	leader, err := old.Leader(ctx)
	if err != nil || string(leader.Kvs[0].Value) != "old" {
		t.Fatalf("leader %v (%v); want the older candidate", leader, err)
	}
	select {
	case r := <-won:
		t.Fatalf("the campaign won while an older candidate leads: %+v", r)
	default:
	}
	if err := old.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-won:
	case <-time.After(10 * time.Second):
		t.Fatal("the campaign did not win within 10s of the older candidate's resignation")
	}
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if r.err != nil || r.key != key || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != r.rev || string(resp.Kvs[0].Value) != "new" {
		t.Fatalf("campaign = %+v; want key %s created at the revision returned, value new (%v)", r, key, resp.Kvs)
	}
	if leader, err := old.Leader(ctx); err != nil || string(leader.Kvs[0].Value) != "new" {
		t.Fatalf("concurrency sees leader %v (%v); want new", leader, err)
	}

	// The same lease again: the same key and revision; another value
	// replaces the value.
	if k, rev, err := campaign(ctx, cli, prefix, lease, "new2"); err != nil || k != key || rev != r.rev {
		t.Fatalf("campaign again = %s, %d, %v; want %s, %d", k, rev, err, key, r.rev)
	}
	if resp, err := cli.Get(ctx, key); err != nil || string(resp.Kvs[0].Value) != "new2" {
		t.Fatalf("value after the second campaign: %v (%v); want new2", resp.Kvs, err)
	}

	// A younger concurrency candidate waits for the resignation.
	cs2, err := concurrency.NewSession(cli)
	if err != nil {
		t.Fatal(err)
	}
	defer cs2.Close()
	next := concurrency.NewElection(cs2, prefix)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = next.Campaign(cctx, "next")
	cancel()
	if err == nil {
		t.Fatal("a younger concurrency candidate won while the campaign's key leads")
	}
	if err := resign(ctx, cli, key, r.rev); err != nil {
		t.Fatal(err)
	}
	cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := next.Campaign(cctx, "next"); err != nil {
		t.Fatalf("the concurrency candidate did not win after the resignation: %v", err)
	}
}
