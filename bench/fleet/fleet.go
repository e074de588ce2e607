package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime/pprof"
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
	index  int // in the whole fleet
	node   string
	gossip bool
	m      *cluster.Member
	cancel context.CancelFunc
	done   chan struct{}
	// onApplied, when set, is told the first time the member takes each
	// revision (a child process reports it to the parent).
	onApplied func(index int, rev int64, at time.Time)

	mu      sync.Mutex
	applied map[int64]time.Time // first Update of each revision
	last    cluster.Update
	updates int       // Updates taken
	regs    []regMark // when the registrations counter grew
}

// regMark is when a member's registrations counter reached n.
type regMark struct {
	N  int       `json:"n"`
	At time.Time `json:"at"`
}

// memberState is what the measurements read of one member: its counters,
// why it hands out nothing yet, and its last update.
type memberState struct {
	Stats     cluster.Stats `json:"stats"`
	Pending   string        `json:"pending,omitempty"`
	Revision  int64         `json:"revision"`
	Updates   int           `json:"updates"`
	Upstreams []string      `json:"upstreams,omitempty"`
	Gossip    bool          `json:"gossip,omitempty"`
}

// simFleet is the simulated fleet as the measurements see it: the members
// of this process (fleet) or those of several child processes (procFleet).
// Members are numbered 0..size()-1 across the whole fleet.
type simFleet interface {
	// start starts n members, batch every 250ms, gossipers of them with
	// gossip, and returns once every member took an update of revision
	// rev or later (or at least 99% of them when timeout passed).
	start(n, gossipers, batch int, rev int64, timeout time.Duration) (time.Duration, error)
	size() int
	node(i int) string
	// appliedAt returns when member i first took revision rev or a later
	// one, and whether it has.
	appliedAt(i int, rev int64) (time.Time, bool)
	// registeredAt returns when member i's registrations counter first
	// exceeded after, and whether it has.
	registeredAt(i int, after int) (time.Time, bool)
	states() []memberState
	// restart stops member i and starts it again (a new process on its
	// host: new client, lease and counters).
	restart(i int) error
	// pids are the simulator's processes, for their CPU and memory.
	pids() []int
	// ringCounts are the ring computations run and shared (-share-ring).
	ringCounts() (computed, shared int64)
	stopAll()
}

// fleet is the running simulated members of this process.
type fleet struct {
	endpoints []string
	log       *slog.Logger
	mu        sync.Mutex // guards members' elements during a restart
	members   []*simMember
	// memo, when set, shares ring computations among the members (see
	// ringMemo); nil: each member computes its own.
	memo *ringMemo
	// first is the fleet-wide index of members[0] (a child process runs a
	// slice of the fleet); total and gossipers are the whole fleet's.
	first, total, gossipers int
	onApplied               func(index int, rev int64, at time.Time)
	onRegister              func(index int, mark regMark)
	pollOnce                sync.Once
}

// withGossip reports whether member i of a fleet of n with gossipers
// gossiping members runs gossip: every n/gossipers-th, spread over the
// fleet (and so over the child processes, which run consecutive slices).
func withGossip(i, n, gossipers int) bool {
	if gossipers <= 0 {
		return false
	}
	every := max(1, n/gossipers)
	return i%every == 0 && i/every < gossipers
}

// startMember starts member index of the fleet: with gossip on loopback
// when withGossip, else with cluster.Config.NoGossip.
func (f *fleet) startMember(index int, withGossip bool) (*simMember, error) {
	node := nodeName(index)
	gc := gossip.DefaultConfig()
	gc.BindAddr, gc.BindPort = "127.0.0.1", 0
	cfg := cluster.Config{
		Cluster: clusterName, Node: node, Kind: keys.Agent,
		Labels:  map[string]string{"zone": fmt.Sprintf("z%d", index%3)},
		Address: "127.0.0.1:9100", Version: "fleet-sim",
		Etcd:   etcdclient.Config{Endpoints: f.endpoints, KeepAliveTimeout: keepAliveTimeout},
		Gossip: gc, NoGossip: !withGossip,
		LeaseTTL: leaseTTL,
	}
	if noSpread(node) {
		cfg.ReregisterSpread = -1
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
	s := &simMember{index: index, node: node, gossip: withGossip, m: m, cancel: cancel, done: make(chan struct{}),
		applied: map[int64]time.Time{}, onApplied: f.onApplied}
	go func() {
		defer close(s.done)
		// Every goroutine the member starts (its etcd client's and gRPC's
		// among them) carries its node name: a goroutine profile
		// (-pprof, /debug/pprof/goroutine?debug=1) tells one member's
		// goroutines from the others'.
		pprof.Do(ctx, pprof.Labels("node", node), func(ctx context.Context) {
			if err := m.Run(ctx); err != nil {
				f.log.Error("member stopped", "node", node, "err", err)
			}
		})
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
			_, seen := s.applied[u.Revision]
			if !seen {
				s.applied[u.Revision] = now
			}
			s.last = u
			s.updates++
			s.mu.Unlock()
			if !seen && s.onApplied != nil {
				s.onApplied(s.index, u.Revision, now)
			}
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
	return firstApplied(s.applied, rev)
}

// firstApplied returns the earliest time in applied of revision rev or a
// later one.
func firstApplied(applied map[int64]time.Time, rev int64) (time.Time, bool) {
	var first time.Time
	for r, at := range applied {
		if r >= rev && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// registeredAt returns when the member's registrations first exceeded
// after (as the fleet's poller saw them).
func (s *simMember) registeredAt(after int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return firstRegistered(s.regs, after)
}

func firstRegistered(marks []regMark, after int) (time.Time, bool) {
	for _, m := range marks {
		if m.N > after {
			return m.At, true
		}
	}
	return time.Time{}, false
}

// state returns what the measurements read of the member.
func (s *simMember) state() memberState {
	st := memberState{Stats: s.m.Stats(), Gossip: s.gossip}
	if err := s.m.Pending(); err != nil {
		st.Pending = err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Revision, st.Updates = s.last.Revision, s.updates
	st.Upstreams = slices.Clone(s.last.Assignment.Upstreams)
	return st
}

func (s *simMember) stop() {
	s.cancel()
	<-s.done
}

// noSpread reports whether node is one of the half of the fleet that
// re-registers without cluster.Config.ReregisterSpread's wait, for
// comparison in the same outage: odd node numbers.
func noSpread(node string) bool { return (node[len(node)-1]-'0')%2 == 1 }

// nodeNumber matches a member's node name in a message.
var nodeNumber = regexp.MustCompile(`sim-[0-9]+`)

// nodeName is member i's node name.
func nodeName(i int) string { return fmt.Sprintf("sim-%05d", i) }

// start starts the members first..first+n-1 of a fleet of total (the
// whole fleet in one process: first 0, n total), batch at a time every
// 250ms; those withGossip picks run gossip. It returns once they all
// took revision rev or later, or timeout passed; with rev 0 it returns
// once they are started.
func (f *fleet) start(n, gossipers, batch int, rev int64, timeout time.Duration) (time.Duration, error) {
	if f.total == 0 {
		f.total = n
	}
	f.gossipers = gossipers
	begin := time.Now()
	for j := range n {
		i := f.first + j
		s, err := f.startMember(i, withGossip(i, f.total, gossipers))
		if err != nil {
			return 0, err
		}
		f.mu.Lock()
		f.members = append(f.members, s)
		f.mu.Unlock()
		if (j+1)%batch == 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	f.pollOnce.Do(func() { go f.pollRegistrations() })
	if rev == 0 {
		return time.Since(begin), nil
	}
	return finishStart(f, n, rev, begin, timeout)
}

// startQuorum is the share of the fleet that must have started when the
// start's time is up for the run to go on without the others (-start-quorum).
var startQuorum = 0.99

// finishStart waits until the fleet took revision rev: the end of start.
func finishStart(f simFleet, n int, rev int64, begin time.Time, timeout time.Duration) (time.Duration, error) {
	delays, err := waitApplied(f, rev, begin, timeout)
	if err != nil && float64(len(delays)) < startQuorum*float64(n) {
		return 0, fmt.Errorf("fleet of %d did not start: %w", n, err)
	}
	if err != nil {
		// A few stragglers do not stop the run.
		progress("going on without them: %v", err)
	}
	return time.Since(begin), nil
}

// pollRegistrations notes, every 50ms, when each member's registrations
// counter grew: the spread of the re-registrations after an outage.
func (f *fleet) pollRegistrations() {
	for {
		time.Sleep(50 * time.Millisecond)
		f.mu.Lock()
		ms := slices.Clone(f.members)
		f.mu.Unlock()
		if ms == nil {
			return
		}
		now := time.Now()
		for _, s := range ms {
			n := s.m.Stats().Registrations
			s.mu.Lock()
			grew := n > 0 && (len(s.regs) == 0 || s.regs[len(s.regs)-1].N < n)
			if grew {
				s.regs = append(s.regs, regMark{N: n, At: now})
			}
			s.mu.Unlock()
			if grew && f.onRegister != nil {
				f.onRegister(s.index, regMark{N: n, At: now})
			}
		}
	}
}

func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

func (f *fleet) member(i int) *simMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[i-f.first]
}

func (f *fleet) node(i int) string { return nodeName(i) }

func (f *fleet) appliedAt(i int, rev int64) (time.Time, bool) { return f.member(i).appliedAt(rev) }

func (f *fleet) registeredAt(i int, after int) (time.Time, bool) {
	return f.member(i).registeredAt(after)
}

func (f *fleet) states() []memberState {
	f.mu.Lock()
	ms := slices.Clone(f.members)
	f.mu.Unlock()
	out := make([]memberState, len(ms))
	for i, s := range ms {
		out[i] = s.state()
	}
	return out
}

// restart stops member i and starts it again; resetting, when set, is
// called between the two.
func (f *fleet) restart(i int) error { return f.restartWith(i, nil) }

func (f *fleet) restartWith(i int, resetting func()) error {
	old := f.member(i)
	old.stop()
	if resetting != nil {
		resetting()
	}
	s, err := f.startMember(old.index, old.gossip)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.members[i-f.first] = s
	f.mu.Unlock()
	return nil
}

func (f *fleet) pids() []int { return []int{os.Getpid()} }

func (f *fleet) ringCounts() (int64, int64) {
	if f.memo == nil {
		return 0, 0
	}
	return f.memo.computed.Load(), f.memo.shared.Load()
}

// waitApplied waits until every member took revision rev (or later) and
// returns each member's delay from since.
func waitApplied(f simFleet, rev int64, since time.Time, timeout time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(timeout)
	said := time.Now()
	for {
		var delays []time.Duration
		var missing []int
		for i := range f.size() {
			at, ok := f.appliedAt(i, rev)
			if !ok {
				missing = append(missing, i)
				continue
			}
			delays = append(delays, at.Sub(since))
		}
		if len(missing) == 0 {
			return delays, nil
		}
		late := time.Now().After(deadline)
		if !late && time.Since(said) < 15*time.Second {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		why := map[string]int{}
		states := f.states()
		for _, i := range missing {
			st := states[i]
			msg := "settings of an older revision"
			switch {
			case st.Stats.ConfigSeen < rev:
				msg += ", config watch behind"
			default:
				msg += ", config seen"
			}
			if st.Pending != "" {
				// One count per reason, not per member.
				msg = nodeNumber.ReplaceAllString(st.Pending, "sim-N")
			}
			why[msg]++
			if len(missing) <= 3 || (late && len(why) < 40 && i%7 == 0) {
				why[fmt.Sprintf("%s (gossip %v) at revision %d after %d updates, %+v", f.node(i), st.Gossip, st.Revision, st.Updates, st.Stats)]++
			}
		}
		if late {
			return delays, fmt.Errorf("%d of %d members did not take config revision %d within %s: %v", len(missing), f.size(), rev, timeout, why)
		}
		progress("%d of %d members took config revision %d; the others: %v", len(delays), f.size(), rev, why)
		said = time.Now()
	}
}

// stats returns every member's counters.
func stats(f simFleet) []cluster.Stats {
	states := f.states()
	out := make([]cluster.Stats, len(states))
	for i, st := range states {
		out[i] = st.Stats
	}
	return out
}

// stopAll stops every member, many at once.
func (f *fleet) stopAll() {
	f.mu.Lock()
	ms := f.members
	f.members = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for _, s := range ms {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.stop()
		})
	}
	wg.Wait()
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
