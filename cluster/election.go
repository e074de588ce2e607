package cluster

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/etcdclient"
)

// campaign is etcd's concurrency.Election.Campaign on the member's own
// registration lease: it puts the candidate key prefix/<lease in hex>
// with val, bound to lease, unless it exists, and returns once every
// candidate key created before it is gone, with the key and its create
// revision (the publisher's transactions compare it, so that a member
// that lost the election cannot write). Keys and order are concurrency's,
// so members of either kind campaign in one election. Without a
// concurrency.Session, which would keep the lease alive a second time
// (the member's session does) with two goroutines of its own; the wait
// for an older key's deletion uses the config's watch stream (rare
// events) instead of a stream of its own. An error leaves the key for
// the next campaign with the same lease to find.
func campaign(ctx context.Context, cli *clientv3.Client, prefix string, lease clientv3.LeaseID, val string) (key string, rev int64, err error) {
	key = candidateKey(prefix, lease)
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return "", 0, err
	}
	rev = resp.Header.Revision
	if !resp.Succeeded {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		rev = kv.CreateRevision
		if string(kv.Value) != val {
			// concurrency's Proclaim: the same key, the value replaced.
			r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).Commit()
			if err != nil {
				return "", 0, err
			}
			if !r.Succeeded {
				return "", 0, errors.New("the candidate key changed while campaigning")
			}
		}
	}
	if err := waitOlderGone(ctx, cli, prefix+"/", rev-1); err != nil {
		return "", 0, err
	}
	return key, rev, nil
}

// candidateKey is the key a campaign with lease puts under prefix.
func candidateKey(prefix string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s/%x", prefix, lease)
}

// waitOlderGone returns once no key under prefix has a create revision
// of maxRev or less (concurrency's waitDeletes).
func waitOlderGone(ctx context.Context, cli *clientv3.Client, prefix string, maxRev int64) error {
	opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(maxRev))
	for {
		resp, err := cli.Get(ctx, prefix, opts...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		if err := waitKeyDeleted(ctx, cli, string(resp.Kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

// waitKeyDeleted returns once key is deleted at revision rev or later.
func waitKeyDeleted(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	wctx, cancel := context.WithCancel(etcdclient.WatchStream(ctx, "config"))
	defer cancel()
	var wr clientv3.WatchResponse
	for wr = range cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := wr.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("the watch of an older candidate ended")
}

// resign deletes the candidate key of a campaign, if it is still the
// one created at rev, so that the next candidate takes over at once.
func resign(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	return err
}
