package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/cluster/targets"
)

// DefaultTargetWeightInterval is how often a member rewrites its weight
// list (target-weights/<node>) at most; it writes only when a class
// changed.
const DefaultTargetWeightInterval = 5 * time.Second

// gainedWeightInterval is how often a member rewrites its weight list at
// most while the list gains targets.
const gainedWeightInterval = time.Second

// weightHold bounds how long a member keeps publishing the class of a
// target it handed over, waiting for the new owner to publish one.
const weightHold = 2 * time.Minute

// weightSet is every member's weight list as read from etcd at one
// revision. It is never modified once handed out.
type weightSet struct {
	rev    int64                       // of the last change seen
	byNode map[string][]targets.Weight // each member's list, sorted by key
	merged map[uint64]uint64           // targets.MergeWeights over byNode
}

// class returns the weight of target ID id, 0 when none is published.
func (w *weightSet) class(id string) uint64 {
	if w == nil {
		return 0
	}
	return w.merged[targets.WeightKey(id)]
}

// carries reports whether node's list holds the target of weight key k.
func (w *weightSet) carries(node string, k uint64) bool {
	return w != nil && targets.HasWeight(w.byNode[node], k)
}

// newWeightSet merges lists into a weightSet at rev.
func newWeightSet(rev int64, byNode map[string][]targets.Weight) *weightSet {
	lists := make([][]targets.Weight, 0, len(byNode))
	for _, n := range slices.Sorted(maps.Keys(byNode)) {
		lists = append(lists, byNode[n])
	}
	return &weightSet{rev: rev, byNode: byNode, merged: targets.MergeWeights(lists...)}
}

// watchWeights delivers the members' weight lists each time one changes:
// a read of target-weights/, then a watch of it from the next revision,
// on a watch stream of its own: a fleet's weight lists can change by the
// thousand during handovers, and the config must not wait behind them. A list that cannot be decoded counts as
// empty, on every member alike, and is logged once. The channel is closed
// once ctx ends.
func watchWeights(ctx context.Context, wg *sync.WaitGroup, cli *clientv3.Client, space keys.Space, log *slog.Logger) <-chan *weightSet {
	out := make(chan *weightSet, 1)
	wg.Go(func() {
		defer close(out)
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, space.TargetWeights(), clientv3.WithPrefix())
			if err != nil {
				log.Debug("cannot read the target weights; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			byNode := map[string][]targets.Weight{}
			take := func(node string, value []byte) {
				ws, err := targets.DecodeWeights(value)
				if err != nil {
					delete(byNode, node)
					log.Warn("ignoring a member's target weights", "node", node, "err", err)
					return
				}
				byNode[node] = ws
			}
			for _, kv := range resp.Kvs {
				if node, ok := space.ParseTargetWeight(string(kv.Key)); ok {
					take(node, kv.Value)
				}
			}
			if !send(ctx, out, newWeightSet(resp.Header.Revision, maps.Clone(byNode))) {
				return
			}
			wctx, cancel := context.WithCancel(etcdclient.WatchStream(ctx, "weights"))
			wch := cli.Watch(wctx, space.TargetWeights(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			for wr := range wch {
				if wr.Err() != nil {
					log.Debug("target weight watch failed; reading again", "err", wr.Err())
					break
				}
				var rev int64
				for _, ev := range wr.Events {
					node, ok := space.ParseTargetWeight(string(ev.Kv.Key))
					if !ok {
						continue
					}
					rev = ev.Kv.ModRevision
					if ev.Type == clientv3.EventTypeDelete {
						delete(byNode, node)
						continue
					}
					take(node, ev.Kv.Value)
				}
				if rev == 0 {
					continue
				}
				if !send(ctx, out, newWeightSet(rev, maps.Clone(byNode))) {
					cancel()
					return
				}
			}
			cancel()
			sleepCtx(ctx, 200*time.Millisecond)
		}
	})
	return out
}

// weightWriter keeps the classes a member publishes, by target ID. Only
// the writer's goroutine touches it.
type weightWriter struct {
	pub map[string]*heldWeight
}

type heldWeight struct {
	key    uint64    // targets.WeightKey of the ID
	class  uint64    // published
	gaveUp time.Time // when the member stopped scraping the target; zero while it does
}

// update takes the scraper's states and what the member scrapes of the
// placement cluster jobs (scraping: key -> target ID, owned and lingering
// targets alike), and returns the weights to publish. A target scraped
// successfully gets targets.NextClass of its published class and its
// samples; a failed scrape keeps the class. A target the member no longer
// scrapes keeps its class until its owner (owners: ID -> owner of the
// targets owned elsewhere) publishes one (seen in ws), it leaves the
// published sets, or weightHold passed: the target weighs the same all
// through a handover, so that its weight does not move it again.
func (w *weightWriter) update(states []scrape.TargetState, scraping, owners map[string]string, ws *weightSet, now time.Time) []targets.Weight {
	if w.pub == nil {
		w.pub = map[string]*heldWeight{}
	}
	mine := make(map[string]bool, len(scraping))
	for _, id := range scraping {
		mine[id] = true
	}
	for _, s := range states {
		id, ok := scraping[s.Key]
		if !ok {
			continue
		}
		e := w.pub[id]
		if s.Health == scrape.HealthUp && s.Samples > 0 {
			if e == nil {
				e = &heldWeight{key: targets.WeightKey(id)}
				w.pub[id] = e
			}
			e.class = targets.NextClass(e.class, uint64(s.Samples))
		}
	}
	out := make([]targets.Weight, 0, len(w.pub))
	for id, e := range w.pub {
		if mine[id] {
			e.gaveUp = time.Time{}
		} else {
			if e.gaveUp.IsZero() {
				e.gaveUp = now
			}
			owner, published := owners[id]
			if !published || ws.carries(owner, e.key) || now.Sub(e.gaveUp) >= weightHold {
				delete(w.pub, id)
				continue
			}
		}
		out = append(out, targets.Weight{Key: e.key, Class: e.class})
	}
	return out
}

// holding reports whether w keeps the class of a target the member no
// longer scrapes, waiting for its new owner to publish one.
func (w *weightWriter) holding() bool {
	for _, e := range w.pub {
		if !e.gaveUp.IsZero() {
			return true
		}
	}
	return false
}

// runWeights publishes the member's weight list until ctx ends, bound to
// the session's lease: on each report of the scraper's states (every
// 500 ms while the agent scrapes), when the encoded list changed or the
// lease did, at most every TargetWeightInterval, or every second when the
// list gains a target. A steady fleet writes nothing. While the list
// holds targets the member handed over, and after a write that failed
// or was held back, it also wakes on its own: the command stops
// reporting once the agent scrapes nothing.
func (m *Member) runWeights(ctx context.Context, cli *clientv3.Client, sess *session.Session) {
	key, err := m.space.TargetWeight(m.cfg.Node)
	if err != nil {
		return
	}
	p := weightPublisher{m: m, cli: cli, sess: sess, key: key, keys: map[uint64]bool{}}
	again := time.NewTimer(time.Hour)
	again.Stop()
	defer again.Stop()
	var againC <-chan time.Time // again's channel while it is armed
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.scrape.weightKick:
		case <-againC:
		}
		againC = nil
		states, _, ok := m.scrape.report.latest()
		if !ok {
			continue
		}
		if d := p.pass(ctx, states); d > 0 {
			again.Reset(d)
			againC = again.C
		}
	}
}

// weightPublisher is runWeights' state; only its goroutine touches it.
type weightPublisher struct {
	m    *Member
	cli  *clientv3.Client
	sess *session.Session
	key  string

	w       weightWriter
	written []byte          // nil: the key holds nothing of this member's
	keys    map[uint64]bool // of the weights in written
	lease   clientv3.LeaseID
	last    time.Time // of the last write
	warned  int
}

// pass updates the list with states and writes it when it changed, and
// returns how soon it wants another pass without a report (0: not
// before the next report).
func (p *weightPublisher) pass(ctx context.Context, states []scrape.TargetState) time.Duration {
	r := p.m.scrape
	r.mu.Lock()
	scraping, owners := r.clusterIDs, r.owners
	r.mu.Unlock()
	list := p.w.update(states, scraping, owners, r.weights.Load(), time.Now())
	var idle time.Duration // what is left without a report: the handed-over targets age
	if p.w.holding() {
		idle = gainedWeightInterval
	}
	// A target the list gains (one just taken over, or scraped for
	// the first time) is published within a second: until then it
	// weighs what its old owner holds, or the median.
	every := p.m.cfg.TargetWeightInterval
	if slices.ContainsFunc(list, func(w targets.Weight) bool { return !p.keys[w.Key] }) {
		every = min(every, gainedWeightInterval)
	}
	info, _ := p.sess.Info()
	if info.Phase != session.Registered {
		return reportRetry
	}
	if since := time.Since(p.last); since < every {
		return every - since
	}
	var data []byte
	if len(list) > 0 {
		var dropped int
		data, dropped = targets.EncodeWeights(list)
		if dropped != p.warned {
			if dropped > 0 {
				p.m.log.Warn("too many scrape targets to publish all their weights; the lightest weigh the median", "left_out", dropped)
			}
			p.warned = dropped
		}
	}
	if bytes.Equal(data, p.written) && (data == nil || info.Lease == p.lease) {
		return idle
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var err error
	if data == nil {
		_, err = p.cli.Delete(wctx, p.key)
	} else {
		_, err = p.cli.Put(wctx, p.key, string(data), clientv3.WithLease(info.Lease))
	}
	cancel()
	if err != nil {
		p.m.log.Debug("cannot write the target weights", "err", err)
		return reportRetry
	}
	p.written, p.lease, p.last = data, info.Lease, time.Now()
	clear(p.keys)
	for _, w := range list {
		p.keys[w.Key] = true
	}
	return idle
}

// ReadTargetWeights reads every member's weight list at revision rev (the
// current one when 0) and returns the weight of each target by
// targets.WeightKey, merged as members merge them. A list that cannot be
// decoded is left out, as members leave it out.
func ReadTargetWeights(ctx context.Context, cli *clientv3.Client, space keys.Space, rev int64) (map[uint64]uint64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := cli.Get(ctx, space.TargetWeights(), opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", space.TargetWeights(), err)
	}
	var lists [][]targets.Weight
	for _, kv := range resp.Kvs {
		if _, ok := space.ParseTargetWeight(string(kv.Key)); !ok {
			continue
		}
		if ws, err := targets.DecodeWeights(kv.Value); err == nil {
			lists = append(lists, ws)
		}
	}
	return targets.MergeWeights(lists...), nil
}
