package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/prom/labels"
)

// randomSets returns n label sets with an incompressible label each.
func randomSets(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		b := make([]byte, 64)
		_, _ = rand.Read(b)
		out[i] = labels.FromStrings("__address__", fmt.Sprintf("10.%d.%d.%d:9100", i>>16, i>>8&255, i&255),
			"job", "big", "noise", hex.EncodeToString(b))
	}
	return out
}

// TestPublishChunked publishes a set of several chunks as the elected
// member: the watch reads it back whole; the same set again writes
// nothing; a smaller one replaces it and leaves no chunk of the old one;
// a member that is not elected writes nothing.
func TestPublishChunked(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	ctx := t.Context()
	space, _ := keys.New("ct")
	cs, err := concurrency.NewSession(cli)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	el := concurrency.NewElection(cs, space.DiscoveryElection())
	if err := el.Campaign(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pub := &publisher{cli: cli, space: space, log: log, leader: clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())}
	if err := pub.load(ctx); err != nil {
		t.Fatal(err)
	}
	sets := watchTargets(ctx, cli, space, log)
	<-sets // the empty start
	big := randomSets(12000)
	if err := pub.publish(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	got := <-sets
	if n := len(got["big"].targets); n != len(big) {
		t.Fatalf("read back %d targets, want %d", n, len(big))
	}
	chunks, err := cli.Get(ctx, space.TargetChunks(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || chunks.Count < 2 {
		t.Fatalf("%v chunks (%v); want a set of several", chunks.Count, err)
	}
	before := chunks.Header.Revision
	if err := pub.publish(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if r, _ := cli.Get(ctx, "x"); r.Header.Revision != before {
		t.Fatalf("an unchanged set moved etcd from revision %d to %d", before, r.Header.Revision)
	}
	if err := pub.publish(ctx, "big", big[:10]); err != nil {
		t.Fatal(err)
	}
	got = <-sets
	chunks, _ = cli.Get(ctx, space.TargetChunks(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if len(got["big"].targets) != 10 || chunks.Count != 1 {
		t.Fatalf("after the smaller set: %d targets read, %d chunks in etcd; want 10 and 1", len(got["big"].targets), chunks.Count)
	}
	other := &publisher{cli: cli, space: space, log: log, published: map[string]string{},
		leader: clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev()+1)}
	if err := other.publish(ctx, "big", big[:5]); !errors.Is(err, errNotLeader) {
		t.Fatalf("a member not elected published: %v", err)
	}
	if err := pub.prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	all, _ := cli.Get(ctx, space.Prefix()+"target", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if all.Count != 0 {
		t.Fatalf("%d keys left after the job was pruned", all.Count)
	}
}
