package cluster

import (
	"context"
	"log/slog"
	"maps"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
)

// watchMembers delivers the live members of one kind, node name to member,
// each time the set changes: a full read, then a watch from the revision
// after it; after an error it reads again. The channel is closed once ctx
// ends.
func watchMembers(ctx context.Context, cli *clientv3.Client, space keys.Space, kind keys.Kind, log *slog.Logger) <-chan map[string]session.Member {
	out := make(chan map[string]session.Member, 1)
	prefix := space.MembersOf(kind)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				log.Debug("cannot list members; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			set := map[string]session.Member{}
			for _, kv := range resp.Kvs {
				if _, node, ok := space.ParseMember(string(kv.Key)); ok {
					m, err := session.ParseMember(kv.Value)
					if err == nil {
						set[node] = m
					}
				}
			}
			if !send(ctx, out, maps.Clone(set)) {
				return
			}
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			for wr := range wch {
				if wr.Err() != nil {
					log.Debug("member watch failed; listing again", "err", wr.Err())
					break
				}
				for _, ev := range wr.Events {
					_, node, ok := space.ParseMember(string(ev.Kv.Key))
					if !ok {
						continue
					}
					if ev.Type == clientv3.EventTypeDelete {
						delete(set, node)
					} else if m, err := session.ParseMember(ev.Kv.Value); err == nil {
						set[node] = m
					}
				}
				if !send(ctx, out, maps.Clone(set)) {
					cancel()
					return
				}
			}
			cancel()
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}()
	return out
}

// send replaces any value not yet taken from out with v: the consumer only
// wants the latest set.
func send[T any](ctx context.Context, out chan T, v T) bool {
	select {
	case <-out:
	default:
	}
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
