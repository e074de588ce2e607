package cluster

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
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
type members map[memberID]liveMember

// liveWatch is the live agents and relays as etcd's watch keeps them.
// The watch signals each change on Changed; the loop takes the set with
// Snapshot only when it recomputes, and the watch copies the set at its
// first change after a Snapshot, so that a burst of events (a rolling
// restart brings two per restarted member to every member) costs one
// copy of the set per recompute, not one per event, and a member holds
// one set, not two, while membership does not change.
type liveWatch struct {
	changed chan struct{} // capacity 1; closed once the watch ends
	events  *atomic.Uint64

	mu     sync.Mutex
	set    members
	shared bool // Snapshot handed set out: copy it before a change
	labels labelTable
	// parser is the watch goroutine's, which alone calls reset and apply.
	parser session.RegistrationParser
}

func newLiveWatch(events *atomic.Uint64) *liveWatch {
	return &liveWatch{changed: make(chan struct{}, 1), events: events}
}

// Changed is signalled (coalesced) after each change of the set, and
// closed once ctx of watchMembers ends.
func (w *liveWatch) Changed() <-chan struct{} { return w.changed }

// Snapshot returns the current set, which the caller must not change:
// the watch changes a copy of it from then on.
func (w *liveWatch) Snapshot() members {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shared = true
	return w.set
}

// reset replaces the set with the members of a full read of members/.
func (w *liveWatch) reset(space keys.Space, kvs []*mvccpb.KeyValue) {
	var labels labelTable
	set := make(members, len(kvs))
	for _, kv := range kvs {
		if kind, node, ok := space.ParseMember(string(kv.Key)); ok {
			r, err := w.parser.Parse(kv.Value)
			if err == nil {
				set[memberID{kind, strings.Clone(node)}] = newLiveMember(r, &labels)
			}
		}
	}
	w.mu.Lock()
	w.set, w.shared, w.labels = set, false, labels
	w.mu.Unlock()
	w.signal()
}

// apply takes the events of one watch response into the set. A value
// that cannot be parsed leaves the member as it was.
func (w *liveWatch) apply(space keys.Space, evs []*clientv3.Event) {
	w.mu.Lock()
	defer w.signal()
	defer w.mu.Unlock()
	for _, ev := range evs {
		kind, node, ok := space.ParseMember(string(ev.Kv.Key))
		if !ok {
			continue
		}
		id := memberID{kind, node}
		old, had := w.set[id]
		var m liveMember
		if ev.Type == clientv3.EventTypeDelete {
			if !had {
				continue
			}
		} else {
			r, err := w.parser.Parse(ev.Kv.Value)
			if err != nil {
				continue
			}
			m = newLiveMember(r, &w.labels)
		}
		if w.shared {
			w.set, w.shared = maps.Clone(w.set), false
		}
		if had {
			w.labels.release(old.labels)
		}
		if ev.Type == clientv3.EventTypeDelete {
			delete(w.set, id)
		} else {
			// The key holds a copy of the node's name, not the whole key
			// it was cut from.
			id.Node = strings.Clone(node)
			w.set[id] = m
		}
	}
}

func (w *liveWatch) signal() {
	kick(w.changed)
}

// watchMembers keeps the live agents and relays: a full read of members/,
// then a watch from the revision after it; after an error it reads again.
// One watch over both kinds gives one consistent view of them. Each event
// is counted in events.
func watchMembers(ctx context.Context, cli *clientv3.Client, space keys.Space, log *slog.Logger, events *atomic.Uint64) *liveWatch {
	w := newLiveWatch(events)
	prefix := space.Members()
	go func() {
		defer close(w.changed)
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				log.Debug("cannot list members; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			w.reset(space, resp.Kvs)
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			for wr := range wch {
				if wr.Err() != nil {
					log.Debug("member watch failed; listing again", "err", wr.Err())
					break
				}
				w.events.Add(uint64(len(wr.Events)))
				w.apply(space, wr.Events)
			}
			cancel()
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}()
	return w
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// kick signals on c, of capacity 1, unless a signal is pending.
func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
