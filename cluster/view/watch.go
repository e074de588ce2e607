package view

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
)

// WatcherConfig tunes a Watcher.
type WatcherConfig struct {
	// Interval is the least time between two views the watcher publishes:
	// a burst of changes (a lease that expires deletes a member and its
	// status key; a config change makes every member write its status)
	// becomes one view. Default 200ms.
	Interval time.Duration
	// Probe is how often the watcher checks that etcd answers: a watch,
	// and the set-up of one, waits through an outage without a word.
	// Default 5s.
	Probe time.Duration
}

// DefaultWatcherConfig returns the defaults.
func DefaultWatcherConfig() WatcherConfig {
	return WatcherConfig{Interval: 200 * time.Millisecond, Probe: 5 * time.Second}
}

// Validate checks c.
func (c WatcherConfig) Validate() error {
	if c.Interval <= 0 || c.Interval > time.Second {
		return fmt.Errorf("view: interval %v is not accepted; want more than 0 and at most 1s (changes must show within 2s)", c.Interval)
	}
	if c.Probe < 100*time.Millisecond {
		return fmt.Errorf("view: probe %v is not accepted; want at least 100ms", c.Probe)
	}
	return nil
}

// Watcher keeps the view of one cluster current: a read of the config, the
// member and the status keys at one revision, then watches on them from
// the next revision. New starts nothing; Run runs it.
type Watcher struct {
	cfg   WatcherConfig
	cli   *clientv3.Client
	space keys.Space
	log   *slog.Logger
}

// NewWatcher returns a watcher of the cluster of space.
func NewWatcher(cfg WatcherConfig, cli *clientv3.Client, space keys.Space, log *slog.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cli == nil {
		return nil, errors.New("view: nil etcd client")
	}
	return &Watcher{cfg: cfg, cli: cli, space: space, log: log}, nil
}

// Run reads the cluster and follows its keys until ctx ends, publishing a
// view after the read and after each change, at most one per interval.
// publish is called from Run's goroutines, one call at a time; it must not
// block, and it may keep the view (Run never changes a view it published).
// While etcd cannot be read (a read fails, or a probe every cfg.Probe),
// Run publishes the last view with Error set, and reads again, waiting 1s,
// then up to 10s. Run returns ctx's error once ctx ends and every
// goroutine it started has returned.
func (w *Watcher) Run(ctx context.Context, publish func(Cluster)) error {
	pub := &publisher{publish: publish, last: Cluster{Name: w.space.Cluster()}}
	var wg sync.WaitGroup
	defer wg.Wait()
	// The probe runs on its own: a watch that is being set up while etcd
	// is down waits for it, and the page must say so meanwhile.
	wg.Go(func() {
		t := time.NewTicker(w.cfg.Probe)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pub.health(w.probe(ctx))
			}
		}
	})
	wait := time.Second
	failing := false
	for ctx.Err() == nil {
		st, err := w.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !failing {
				w.log.Warn("cannot read the cluster from etcd; retrying", "err", err)
			}
			failing = true
			pub.health(fmt.Sprintf("cannot read etcd: %v", err))
			sleep(ctx, wait)
			wait = min(2*wait, 10*time.Second)
			continue
		}
		if failing {
			w.log.Info("reading the cluster from etcd again")
		}
		failing, wait = false, time.Second
		pub.health("")
		pub.view(Build(w.space.Cluster(), st))
		err = w.follow(ctx, st, pub.view)
		if ctx.Err() == nil {
			w.log.Debug("cluster watch ended; reading again", "err", err)
			sleep(ctx, 200*time.Millisecond)
		}
	}
	return ctx.Err()
}

// publisher hands views to the publish func of Run, one call at a time,
// with Error set while etcd does not answer.
type publisher struct {
	mu      sync.Mutex
	publish func(Cluster)
	last    Cluster // without Error
	why     string  // why etcd does not answer; "" while it does
}

// view publishes a new view.
func (p *publisher) view(v Cluster) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = v
	v.Error = p.why
	p.publish(v)
}

// health publishes the last view again when etcd's state changed.
func (p *publisher) health(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if why == p.why {
		return
	}
	p.why = why
	v := p.last
	v.Error = why
	p.publish(v)
}

// read reads the config, member and status keys in one transaction, so at
// one revision.
func (w *Watcher) read(ctx context.Context) (*State, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := w.cli.Txn(rctx).Then(
		clientv3.OpGet(w.space.Config()),
		clientv3.OpGet(w.space.Members(), clientv3.WithPrefix()),
		clientv3.OpGet(w.space.StatusPrefix(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, err
	}
	st := NewState(w.space)
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().GetKvs() {
			st.Apply(string(kv.Key), kv.Value, false, kv.ModRevision)
		}
	}
	st.Revision = resp.Header.Revision
	return st, nil
}

// follow applies the watched changes to st from the revision after
// st.Revision and publishes the views, until a watch fails or ends (etcd
// compacted the revisions it needs, lost its leader, ctx ended).
func (w *Watcher) follow(ctx context.Context, st *State, publish func(Cluster)) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	from := clientv3.WithRev(st.Revision + 1)
	config := w.cli.Watch(wctx, w.space.Config(), from)
	members := w.cli.Watch(wctx, w.space.Members(), clientv3.WithPrefix(), from)
	statuses := w.cli.Watch(wctx, w.space.StatusPrefix(), clientv3.WithPrefix(), from)
	pending := time.NewTimer(time.Hour)
	pending.Stop()
	armed := false
	apply := func(wr clientv3.WatchResponse, open bool) error {
		switch {
		case !open:
			return errors.New("watch closed")
		case wr.CompactRevision != 0:
			return fmt.Errorf("revisions up to %d compacted", wr.CompactRevision)
		case wr.Err() != nil:
			return wr.Err()
		}
		changed := false
		for _, ev := range wr.Events {
			changed = st.Apply(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete, ev.Kv.ModRevision) || changed
		}
		if changed && !armed {
			pending.Reset(w.cfg.Interval)
			armed = true
		}
		return nil
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-config:
			err = apply(wr, ok)
		case wr, ok := <-members:
			err = apply(wr, ok)
		case wr, ok := <-statuses:
			err = apply(wr, ok)
		case <-pending.C:
			armed = false
			publish(Build(w.space.Cluster(), st))
		}
		if err != nil {
			return err
		}
	}
}

// probe returns why etcd does not answer a read of the config key, or "".
func (w *Watcher) probe(ctx context.Context) string {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := w.cli.Get(pctx, w.space.Config(), clientv3.WithCountOnly()); err != nil && ctx.Err() == nil {
		return fmt.Sprintf("cannot read etcd: %v", err)
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
