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

// memberID names one registration. A node registered as both an agent and
// a relay (a mistake) keeps both registrations, so that the ring reports
// the clash on every member alike instead of one registration hiding the
// other depending on the order of events.
type memberID struct {
	Kind keys.Kind
	Node string
}

// members are the live members of every kind.
type members map[memberID]session.Member

// watchMembers delivers the live agents and relays each time the set
// changes: a full read of members/, then a watch from the revision after
// it; after an error it reads again. One watch over both kinds gives one
// consistent view of them. The channel is closed once ctx ends.
func watchMembers(ctx context.Context, cli *clientv3.Client, space keys.Space, log *slog.Logger) <-chan members {
	out := make(chan members, 1)
	prefix := space.Members()
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				log.Debug("cannot list members; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			set := members{}
			for _, kv := range resp.Kvs {
				if kind, node, ok := space.ParseMember(string(kv.Key)); ok {
					m, err := session.ParseMember(kv.Value)
					if err == nil {
						set[memberID{kind, node}] = m
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
					kind, node, ok := space.ParseMember(string(ev.Kv.Key))
					if !ok {
						continue
					}
					id := memberID{kind, node}
					if ev.Type == clientv3.EventTypeDelete {
						delete(set, id)
					} else if m, err := session.ParseMember(ev.Kv.Value); err == nil {
						set[id] = m
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
