package configstore

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/etcdclient"
)

// Update is one revision of the config delivered by Watch.
type Update struct {
	Version
	// Deleted is true when the config key was deleted (at Revision); Data
	// is then nil. A consumer keeps its last config.
	Deleted bool
}

// Watch delivers the current config (if any) and then each new revision,
// in order, each once. It is not validated: a consumer that cannot apply
// an update keeps its last good config.
//
// Watch rides through etcd outages and restarts: it watches again from the
// last revision it saw, and when etcd has compacted that revision away it
// reads the current config instead, so that revisions written meanwhile may
// be skipped but the latest is never missed. It watches with "require
// leader", so that a member cut off from its cluster hands the watch over
// to one that is not.
//
// The channel is unbuffered: the watch waits for the consumer. It is
// closed, and the goroutine behind it has exited, once ctx has ended and
// any pending send has been given up; the consumer need not drain it.
func (s *Store) Watch(ctx context.Context) <-chan Update {
	ch := make(chan Update)
	w := &watcher{s: s, out: ch}
	go w.run(ctx)
	return ch
}

// watcher is the state of one Watch; only its goroutine touches it.
type watcher struct {
	s   *Store
	out chan<- Update

	last    int64 // revision of the last update delivered
	deleted bool  // the last update delivered was a deletion
	from    int64 // store revision to watch from; 0: read first
	wait    time.Duration
	failing bool // etcd errors since the last success; for logging once
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.out)
	w.wait = w.s.opts.retryMin
	for ctx.Err() == nil {
		if w.from == 0 {
			if !w.read(ctx) {
				w.sleep(ctx)
				continue
			}
		}
		w.watch(ctx)
		if ctx.Err() == nil && w.from != 0 {
			w.sleep(ctx)
		}
	}
}

// read delivers the current config and sets where to watch from. It
// reports whether etcd answered.
func (w *watcher) read(ctx context.Context) bool {
	resp, err := w.s.cli.Get(ctx, w.s.key)
	if err != nil {
		w.fail(ctx, "read", err)
		return false
	}
	w.ok()
	w.from = resp.Header.Revision + 1
	switch {
	case len(resp.Kvs) > 0:
		kv := resp.Kvs[0]
		w.deliver(ctx, Update{Version: Version{Data: kv.Value, Revision: kv.ModRevision}})
	case w.last > 0 && !w.deleted:
		// Deleted while we could not watch.
		w.deliver(ctx, Update{Version: Version{Revision: resp.Header.Revision}, Deleted: true})
	}
	return true
}

// watch follows the key from w.from until the watch fails or ctx ends.
// It sets w.from to 0 when the history it needs is compacted.
func (w *watcher) watch(ctx context.Context) {
	wctx, cancel := context.WithCancel(etcdclient.WatchStream(ctx, "config"))
	defer cancel()
	for resp := range w.s.cli.Watch(wctx, w.s.key, clientv3.WithRev(w.from)) {
		if resp.CompactRevision != 0 {
			w.s.opts.logger.Info("watched revision compacted; reading the config again",
				"from", w.from, "compact_revision", resp.CompactRevision)
			w.from = 0
			return
		}
		if err := resp.Err(); err != nil {
			w.fail(ctx, "watch", err)
			return
		}
		w.ok()
		for _, ev := range resp.Events {
			u := Update{Version: Version{Data: ev.Kv.Value, Revision: ev.Kv.ModRevision}}
			if ev.Type == clientv3.EventTypeDelete {
				u = Update{Version: Version{Revision: ev.Kv.ModRevision}, Deleted: true}
			}
			w.deliver(ctx, u)
			w.from = ev.Kv.ModRevision + 1
		}
	}
}

// deliver sends u unless it was delivered already or ctx ends.
func (w *watcher) deliver(ctx context.Context, u Update) {
	if u.Revision <= w.last {
		return
	}
	select {
	case w.out <- u:
		w.last, w.deleted = u.Revision, u.Deleted
	case <-ctx.Done():
	}
}

// fail logs the first of a run of errors and lengthens the wait.
func (w *watcher) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	if !w.failing {
		w.s.opts.logger.Warn("cannot "+what+" the config; retrying", "err", err)
		w.failing = true
	}
}

// ok records a success: the next error is logged, the wait starts short.
func (w *watcher) ok() {
	if w.failing {
		w.s.opts.logger.Info("config watch resumed", "from", w.from)
		w.failing = false
	}
	w.wait = w.s.opts.retryMin
}

// sleep waits before the next attempt, doubling the wait up to the most.
func (w *watcher) sleep(ctx context.Context) {
	t := time.NewTimer(w.wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	w.wait = min(2*w.wait, w.s.opts.retryMax)
}
