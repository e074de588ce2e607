package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/discovery"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/config"
)

// discoverer runs discovery for the cluster's `placement: cluster` scrape
// jobs while this member holds the discovery election, and publishes each
// job's resolved set under targets/<job>. Every agent campaigns, on its
// own registration lease: a member whose lease ends (crash, cut from etcd)
// loses the election with it, and the next candidate takes over within the
// lease's TTL. Members keep scraping the last published sets meanwhile.
type discoverer struct {
	cli   *clientv3.Client
	space keys.Space
	node  string
	log   *slog.Logger
	deps  discovery.Deps

	wake   chan struct{} // the jobs changed; capacity 1
	leader atomic.Bool
	// onErrors receives the discovery and publication errors after each
	// round of the elected member, nil once it is no longer elected.
	onErrors func([]string)

	mu   sync.Mutex
	jobs []config.ScrapeConfig // placement: cluster jobs of the config applied
	set  bool                  // jobs were set once: before, the config is unknown
}

func newDiscoverer(space keys.Space, node string, deps discovery.Deps, log *slog.Logger) *discoverer {
	return &discoverer{space: space, node: node, deps: deps, log: log, wake: make(chan struct{}, 1)}
}

// setJobs gives the jobs of the config the member applies; only those of
// placement cluster are discovered here.
func (d *discoverer) setJobs(all []config.ScrapeConfig) {
	var jobs []config.ScrapeConfig
	for _, j := range all {
		if j.Placement == config.PlacementCluster {
			jobs = append(jobs, j)
		}
	}
	d.mu.Lock()
	d.jobs, d.set = jobs, true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *discoverer) current() ([]config.ScrapeConfig, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.jobs, d.set
}

// run campaigns with each lease the session registers with until ctx
// ends. It is called once.
func (d *discoverer) run(ctx context.Context, cli *clientv3.Client, sess *session.Session) {
	d.cli = cli
	for ctx.Err() == nil {
		info, err := sess.Await(ctx, func(i session.Info) bool { return i.Phase == session.Registered })
		if err != nil {
			return
		}
		d.term(ctx, sess, info.Lease)
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// term campaigns with lease and, once elected, runs discovery until the
// lease ends (the session registered with another one, or its keep-alive
// failed) or ctx ends.
func (d *discoverer) term(ctx context.Context, sess *session.Session, lease clientv3.LeaseID) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = sess.Await(lctx, func(i session.Info) bool { return i.Lease != lease })
		cancel()
	}()
	key, rev, err := campaign(lctx, d.cli, d.space.DiscoveryElection(), lease, d.node)
	if err != nil {
		if lctx.Err() == nil {
			d.log.Debug("cannot campaign for the discovery election; retrying", "err", err)
		}
		return
	}
	d.leader.Store(true)
	defer d.leader.Store(false)
	defer d.onErrors(nil)
	d.log.Info("elected to run discovery for the cluster's scrape jobs")
	err = d.lead(lctx, clientv3.Compare(clientv3.CreateRevision(key), "=", rev))
	if ctx.Err() == nil {
		d.log.Warn("no longer runs discovery", "err", err)
	}
	if ctx.Err() != nil {
		// A graceful stop: let the next candidate take over now, not when
		// the lease is revoked.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = resign(rctx, d.cli, key, rev)
		rcancel()
	}
}

// lead runs discovery and publishes until ctx ends or the member is no
// longer the elected one: leader holds while it is.
func (d *discoverer) lead(ctx context.Context, leader clientv3.Cmp) error {
	mgr, err := discovery.NewManager(d.deps)
	if err != nil {
		return err
	}
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Run(mctx) })
	defer func() { stop(); wg.Wait() }()
	pub := &publisher{cli: d.cli, space: d.space, log: d.log, leader: leader}
	if err := pub.load(ctx); err != nil {
		return err
	}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	apply := true
	for {
		if apply {
			if jobs, ok := d.current(); ok {
				if err := mgr.Apply(jobs); err != nil {
					d.log.Warn("cannot apply the scrape jobs to discovery", "err", err)
				} else if err := pub.prune(ctx, jobNames(jobs)); err != nil {
					return err
				}
			}
			apply = false
		}
		err := d.publishAll(ctx, mgr, pub)
		if errors.Is(err, errNotLeader) || ctx.Err() != nil {
			return err
		}
		var msgs []string
		for _, e := range mgr.Errors() {
			msgs = append(msgs, "discovery: "+e.Error())
		}
		if err != nil {
			msgs = append(msgs, err.Error())
		}
		d.onErrors(msgs)
		if err != nil {
			d.log.Warn("cannot publish scrape targets; retrying", "err", err)
			retry.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
			apply = true
		case <-mgr.Changed():
		case <-retry.C:
		}
	}
}

// publishAll publishes each job's current set. A set with sources that
// have not answered yet does not replace one published before: a member
// that just took over keeps what its predecessor published.
func (d *discoverer) publishAll(ctx context.Context, mgr *discovery.Manager, pub *publisher) error {
	jobs, _ := d.current()
	names := jobNames(jobs)
	sets := mgr.Targets()
	var errs []error
	for _, name := range names {
		t, ok := sets[name]
		if !ok || (len(t.Incomplete) > 0 && pub.has(name)) {
			continue
		}
		if err := pub.publish(ctx, name, t.Labels); err != nil {
			if errors.Is(err, errNotLeader) {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func jobNames(jobs []config.ScrapeConfig) []string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.JobName
	}
	slices.Sort(names)
	return names
}
