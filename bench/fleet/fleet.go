package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/config"
)

// clusterName is the simulated fleet's cluster.
const clusterName = "fleet"

// simMember is one simulated member: the real cluster.Member, without an
// agent; a goroutine takes its updates as the agent would and reports a
// shipper's view every 2s as the agent does.
type simMember struct {
	node   string
	gossip bool
	m      *cluster.Member
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	applied map[int64]time.Time // first Update of each revision
	last    cluster.Update
	updates int // Updates taken
}

// fleet is the running simulated members.
type fleet struct {
	endpoints []string
	log       *slog.Logger
	mu        sync.Mutex // guards members' elements during a restart
	members   []*simMember
	// memo, when set, shares ring computations among the members (see
	// ringMemo); nil: each member computes its own.
	memo *ringMemo
}

// startMember starts member i of the fleet: with gossip on loopback when
// withGossip, else with cluster.Config.NoGossip.
func (f *fleet) startMember(node string, withGossip bool) (*simMember, error) {
	gc := gossip.DefaultConfig()
	gc.BindAddr, gc.BindPort = "127.0.0.1", 0
	cfg := cluster.Config{
		Cluster: clusterName, Node: node, Kind: keys.Agent,
		Labels:  map[string]string{"zone": fmt.Sprintf("z%d", len(node)%3)},
		Address: "127.0.0.1:9100", Version: "fleet-sim",
		Etcd:   etcdclient.Config{Endpoints: f.endpoints},
		Gossip: gc, NoGossip: !withGossip,
	}
	if f.memo != nil {
		cfg.RingCompute = f.memo.compute
	}
	local := config.DefaultAgent()
	local.Hostname = node
	m, err := cluster.New(cfg, local, f.log)
	if err != nil {
		return nil, fmt.Errorf("cannot make member %s: %w", node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &simMember{node: node, gossip: withGossip, m: m, cancel: cancel, done: make(chan struct{}), applied: map[int64]time.Time{}}
	go func() {
		defer close(s.done)
		if err := m.Run(ctx); err != nil {
			f.log.Error("member stopped", "node", node, "err", err)
		}
	}()
	go s.consume(ctx)
	return s, nil
}

// consume takes the member's updates and reports a shipper's view every
// 2s, as cmd/procfleet's clustered agent does.
func (s *simMember) consume(ctx context.Context) {
	report := time.NewTicker(2 * time.Second)
	defer report.Stop()
	var sent uint64
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-s.m.Updates():
			now := time.Now()
			s.mu.Lock()
			if _, ok := s.applied[u.Revision]; !ok {
				s.applied[u.Revision] = now
			}
			s.last = u
			s.updates++
			s.mu.Unlock()
		case <-report.C:
			s.mu.Lock()
			ups := s.last.Agent.Ship.Upstreams
			s.mu.Unlock()
			var eps []cluster.EndpointHealth
			for _, u := range ups {
				eps = append(eps, cluster.EndpointHealth{URL: u, Healthy: true, Recent: true})
			}
			sent += 40 << 10 // an agent's 20 KiB/s
			s.m.ReportShipper(0, eps, sent)
		}
	}
}

// appliedAt returns when the member first took revision rev or a later
// one, and whether it has.
func (s *simMember) appliedAt(rev int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for r, at := range s.applied {
		if r >= rev && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// snapshot returns the last update and the count of updates taken.
func (s *simMember) snapshot() (cluster.Update, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.updates
}

func (s *simMember) stop() {
	s.cancel()
	<-s.done
}

// noSpread reports whether node is one of the half of the fleet that
// re-registers without cluster.Config.ReregisterSpread's wait, for
// comparison in the same outage: odd node numbers.
func noSpread(node string) bool { return (node[len(node)-1]-'0')%2 == 1 }

// nodeName is member i's node name.
func nodeName(i int) string { return fmt.Sprintf("sim-%05d", i) }

// start starts n members, batch at a time, gossipers of them with gossip
// (spread over the fleet: every n/gossipers-th), and returns once every
// member took an update of revision rev or later, or timeout passed.
func (f *fleet) start(n, gossipers, batch int, rev int64, timeout time.Duration) (time.Duration, error) {
	begin := time.Now()
	every := 0
	if gossipers > 0 {
		every = max(1, n/gossipers)
	}
	for i := range n {
		withGossip := every > 0 && i%every == 0 && i/every < gossipers
		s, err := f.startMember(nodeName(i), withGossip)
		if err != nil {
			return 0, err
		}
		f.members = append(f.members, s)
		if (i+1)%batch == 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	delays, err := f.waitApplied(rev, begin, timeout)
	if err != nil && len(delays) < n*99/100 {
		return 0, fmt.Errorf("fleet of %d did not start: %w", n, err)
	}
	if err != nil {
		// A few stragglers (their etcd client wedged) do not stop the run.
		progress("going on without them: %v", err)
	}
	return time.Since(begin), nil
}

// waitApplied waits until every member took revision rev (or later) and
// returns each member's delay from since, sorted by member.
func (f *fleet) waitApplied(rev int64, since time.Time, timeout time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(timeout)
	said := time.Now()
	for {
		var delays []time.Duration
		var missing []*simMember
		for _, s := range f.members {
			at, ok := s.appliedAt(rev)
			if !ok {
				missing = append(missing, s)
				continue
			}
			delays = append(delays, at.Sub(since))
		}
		if len(missing) == 0 {
			return delays, nil
		}
		why := map[string]int{}
		for _, s := range missing {
			msg := "settings of an older revision"
			if err := s.m.Pending(); err != nil {
				msg = err.Error()
			}
			why[msg]++
		}
		if len(missing) <= 3 {
			for _, s := range missing {
				u, n := s.snapshot()
				why[fmt.Sprintf("%s (gossip %v) at revision %d after %d updates, %+v", s.node, s.gossip, u.Revision, n, s.m.Stats())]++
			}
		}
		if time.Now().After(deadline) {
			return delays, fmt.Errorf("%d of %d members did not take config revision %d within %s: %v", len(missing), len(f.members), rev, timeout, why)
		}
		if time.Since(said) >= 15*time.Second {
			progress("%d of %d members took config revision %d; the others: %v", len(delays), len(f.members), rev, why)
			said = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stats returns every member's counters.
func (f *fleet) stats() []cluster.Stats {
	f.mu.Lock()
	ms := slices.Clone(f.members)
	f.mu.Unlock()
	out := make([]cluster.Stats, len(ms))
	for i, s := range ms {
		out[i] = s.m.Stats()
	}
	return out
}

// stopAll stops every member, many at once.
func (f *fleet) stopAll() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for _, s := range f.members {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.stop()
		})
	}
	wg.Wait()
	f.members = nil
}

// upstreams is the simulated cluster's count of upstreams.
const upstreams = 20

// clusterDoc is the cluster document: upstreams VictoriaMetrics, one
// fallback each; capacity varies to make a new revision.
func clusterDoc(capacityMiB int) []byte {
	doc := "ring: {fallbacks: 1}\nupstreams:\n"
	for i := range upstreams {
		doc += fmt.Sprintf("  - {name: vm-%02d, url: \"http://10.0.0.%d:8428/api/v1/import/prometheus\", capacity: %dMiB/s}\n", i, i+1, capacityMiB)
	}
	return []byte(doc)
}

// ringCost is the CPU time of one ring computation for n agents over the
// simulated upstreams, the median of a few, measured while the fleet is
// quiet: the cost each member pays per recompute on a host of its own.
func ringCost(n int) (time.Duration, error) {
	c, err := config.ParseCluster(clusterDoc(100))
	if err != nil {
		return 0, fmt.Errorf("cannot parse the simulated cluster document: %w", err)
	}
	in := ring.Input{Revision: 1, Fallbacks: c.Ring.Fallbacks,
		Ring: ring.Config{PartitionCount: c.Ring.Partitions, ReplicationFactor: c.Ring.Replicas, Load: c.Ring.LoadFactor}}
	for _, e := range c.Endpoints() {
		in.Upstreams = append(in.Upstreams, ring.Upstream{Name: e.Name, URL: e.URL, Capacity: e.Capacity, Relay: e.Relay})
	}
	for i := range n {
		in.Agents = append(in.Agents, nodeName(i))
	}
	var ds []time.Duration
	for range 7 {
		start := time.Now()
		if _, err := ring.Compute(in); err != nil {
			return 0, fmt.Errorf("cannot compute the ring of %d agents: %w", n, err)
		}
		ds = append(ds, time.Since(start))
	}
	return percentile(ds, 0.5), nil
}
