package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/cluster/gossip"
)

// gossipRunner runs the member's gossip, and starts a new one when it
// stopped or could not start. The gossip is soft state: without it the
// member runs on etcd alone (membership from leases, no down votes), and
// says so in its status. Its methods are safe for concurrent use.
type gossipRunner struct {
	cfg   gossip.Config
	retry time.Duration
	log   *slog.Logger  // component=cluster
	base  *slog.Logger  // for the gossip's own component
	swaps chan struct{} // buffered 1: the running gossip changed

	mu      sync.Mutex
	cur     *gossip.Gossip // nil while none runs
	stopCur context.CancelFunc
	why     string // why none runs
}

func newGossipRunner(cfg gossip.Config, retry time.Duration, log, base *slog.Logger) *gossipRunner {
	return &gossipRunner{cfg: cfg, retry: retry, log: log, base: base, swaps: make(chan struct{}, 1)}
}

// current returns the running gossip, nil when none runs, and why not.
func (r *gossipRunner) current() (*gossip.Gossip, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.why
}

// metrics returns the running gossip's metrics, nil when none runs.
func (r *gossipRunner) metrics() *metrics.Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return nil
	}
	return r.cur.Metrics()
}

// gossipDisabled is why no gossip runs with Config.NoGossip.
const gossipDisabled = "disabled (no gossip configured); running on etcd alone"

// Swaps is signalled (coalesced) each time the running gossip changes.
func (r *gossipRunner) Swaps() <-chan struct{} { return r.swaps }

// start makes a gossip and runs it until stop ends it or its Run
// returns; it returns once the gossip listens, or with Run's error.
// done receives Run's result.
func (r *gossipRunner) start() (g *gossip.Gossip, stop context.CancelFunc, done <-chan error, err error) {
	// A gossip registers its series in the set it is given, once: each
	// start gets a set of its own, written while it runs.
	g, err = gossip.New(r.cfg, gossip.Deps{Logger: r.base, Metrics: metrics.NewSet()})
	if err != nil {
		return nil, nil, nil, err
	}
	// The gossip leaves only when the member is done: not on the
	// member's context, which ends before it deregisters.
	ctx, stop := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- g.Run(ctx) }()
	select {
	case <-g.Ready():
		return g, stop, ch, nil
	case err := <-ch:
		stop()
		if err == nil {
			err = errors.New("gossip stopped before it started")
		}
		return nil, nil, nil, err
	}
}

// Run starts the gossip. A first start that cannot bind its address
// returns the *gossip.BindError: the member must not register with a port
// it cannot use. Any other failure, and every later one, leaves the member
// on etcd alone while Run tries again every retry. Once the first start is
// over, first is called (with the gossip, nil when none runs); Run then
// goes on until ctx ends, and stops the running gossip, letting it leave,
// before it returns.
func (r *gossipRunner) Run(ctx context.Context, first func(*gossip.Gossip)) error {
	g, stop, done, err := r.start()
	if _, ok := errors.AsType[*gossip.BindError](err); ok {
		return err
	}
	r.set(g, stop, err)
	first(g)
	for {
		if done == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(r.retry):
			}
			g, stop, done, err = r.start()
			r.set(g, stop, err)
			if err == nil {
				r.log.Info("gossip running again", "addr", g.Addr())
			}
			continue
		}
		select {
		case <-ctx.Done():
			stop()
			<-done
			r.mu.Lock()
			r.cur, r.stopCur, r.why = nil, nil, "stopped with the member"
			r.mu.Unlock()
			return nil
		case err := <-done:
			stop()
			if err == nil {
				err = errors.New("gossip stopped")
			}
			r.set(nil, nil, err)
			done = nil
		}
	}
}

// set records the running gossip g (nil when none runs, err saying why).
func (r *gossipRunner) set(g *gossip.Gossip, stop context.CancelFunc, err error) {
	r.mu.Lock()
	prevWhy := r.why
	r.cur, r.stopCur = g, stop
	r.why = ""
	if g == nil {
		r.why = fmt.Sprintf("not running (%v); running on etcd alone, retrying every %s", err, r.retry)
	}
	why := r.why
	r.mu.Unlock()
	if g == nil && why != prevWhy {
		r.log.Warn("gossip not running: the member runs on etcd alone (slower failure detection, no down votes)", "err", err, "retry", r.retry)
	}
	kick(r.swaps)
}

// kill stops the running gossip as a failure would: Run sees it end and
// starts a new one after retry. For tests.
func (r *gossipRunner) kill() {
	r.mu.Lock()
	stop := r.stopCur
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}
