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
// job's resolved set under targets/<job>. Every agent campaigns while the
// config it applies has such jobs, on its own registration lease: a member
// whose lease ends (crash, cut from etcd) loses the election with it, and
// the next candidate takes over within the lease's TTL. Members keep
// scraping the last published sets meanwhile. While the config has none,
// no member campaigns: a waiting candidate withdraws its key, and the
// elected member deletes what it published, then resigns. So a cluster
// without clustered scraping keeps no candidate key and no watch per
// member in etcd, and its members run none of the election.
type discoverer struct {
	cli   *clientv3.Client
	space keys.Space
	node  string
	log   *slog.Logger
	deps  discovery.Deps

	wake   chan struct{} // the jobs changed; capacity 1
	idle   chan struct{} // the jobs became none; capacity 1
	leader atomic.Bool
	// onErrors receives the discovery and publication errors after each
	// round of the elected member, nil once it is no longer elected.
	onErrors func([]string)

	mu   sync.Mutex
	jobs []config.ScrapeConfig // placement: cluster jobs of the config applied
	set  bool                  // jobs were set once: before, the config is unknown
}

func newDiscoverer(space keys.Space, node string, deps discovery.Deps, log *slog.Logger) *discoverer {
	return &discoverer{space: space, node: node, deps: deps, log: log, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
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
	kick(d.wake)
	if len(jobs) == 0 {
		kick(d.idle)
	}
}

// errNoJobs: the config has no placement cluster job left.
var errNoJobs = errors.New("no placement cluster scrape job in the config")

// awaitJobs returns true once the config applied has placement cluster
// jobs, false when ctx ends first.
func (d *discoverer) awaitJobs(ctx context.Context) bool {
	for {
		if jobs, _ := d.current(); len(jobs) > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-d.wake:
		}
	}
}

func (d *discoverer) current() ([]config.ScrapeConfig, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.jobs, d.set
}

// run campaigns with each lease the session registers with, while the
// config has placement cluster jobs, until ctx ends. It is called once.
func (d *discoverer) run(ctx context.Context, cli *clientv3.Client, sess *session.Session) {
	d.cli = cli
	for ctx.Err() == nil {
		if !d.awaitJobs(ctx) {
			return
		}
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
// failed), the config has no placement cluster job left, or ctx ends. It
// withdraws its candidate key when the jobs are gone.
func (d *discoverer) term(ctx context.Context, sess *session.Session, lease clientv3.LeaseID) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = sess.Await(lctx, func(i session.Info) bool { return i.Lease != lease })
		cancel()
	}()
	// A waiting candidate stops when the jobs are gone; the elected member
	// learns it in lead, from wake, and deletes what it published first.
	cctx, ccancel := context.WithCancel(lctx)
	go func() {
		for {
			select {
			case <-cctx.Done():
				return
			case <-d.idle:
				if jobs, _ := d.current(); len(jobs) == 0 {
					ccancel()
					return
				}
			}
		}
	}()
	key, rev, err := campaign(cctx, d.cli, d.space.DiscoveryElection(), lease, d.node)
	ccancel()
	if err != nil {
		if jobs, _ := d.current(); len(jobs) == 0 && ctx.Err() == nil {
			d.withdraw(ctx, lease)
			return
		}
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
	switch {
	case errors.Is(err, errNoJobs):
		d.log.Info("no placement cluster scrape job left; leaves the discovery election")
	case ctx.Err() == nil:
		d.log.Warn("no longer runs discovery", "err", err)
	}
	if ctx.Err() != nil || errors.Is(err, errNoJobs) {
		// A graceful stop, or nothing left to discover: let the next
		// candidate take over now, not when the lease is revoked.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = resign(rctx, d.cli, key, rev)
		rcancel()
	}
}

// withdraw deletes this member's candidate key of lease, if any: the
// campaign stopped because the config has no placement cluster job.
func (d *discoverer) withdraw(ctx context.Context, lease clientv3.LeaseID) {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := d.cli.Delete(wctx, candidateKey(d.space.DiscoveryElection(), lease)); err != nil {
		d.log.Debug("cannot withdraw from the discovery election", "err", err)
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
				} else if len(jobs) == 0 {
					return errNoJobs
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
