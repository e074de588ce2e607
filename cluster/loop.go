package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/config"
)

// loopState is what the member's loop knows; only the loop touches it.
type loopState struct {
	cluster *config.Cluster
	data    []byte // cluster's document as read from etcd, for the state file
	rev     int64
	live    members
	gotLive bool // live came from etcd: settings are not computed before
	// liveDue: the watch changed the set since live was taken.
	liveDue bool
	view    *view
	last    *Update
	saved   *Update // from the state file, handed out unless etcd answers first
	onSaved bool    // the last Update handed out is the saved one
	scrape  scraping
}

// loop recomputes the member's settings on every change of config,
// membership or gossip view, and hands out the saved state when etcd gave
// no config within StateWait.
func (m *Member) loop(ctx context.Context, saved *Update, cfgs <-chan configstore.Update, lw *liveWatch, pubs <-chan publishedSets) {
	ls := &loopState{view: newView(m.cfg.Node), saved: saved}
	g, _ := m.gossip.current()
	var savedC <-chan time.Time
	if saved != nil {
		t := time.NewTimer(m.cfg.StateWait)
		defer t.Stop()
		savedC = t.C
	}
	// Opinions age out of the down rule and restarted members need a
	// fresh join: look again every refresh even when nothing is signalled.
	refresh := time.NewTicker(5 * time.Second)
	defer refresh.Stop()
	co := newCoalescer(m.cfg.RecomputeEvery, m.cfg.RecomputeMost, m.cfg.RecomputeShare)
	defer co.stop()
	linger := time.NewTimer(time.Hour)
	defer linger.Stop()
	for {
		var changes <-chan struct{}
		if g != nil {
			changes = g.Changes()
		}
		var localChanged, leave <-chan struct{}
		var weights <-chan *weightSet
		if m.scrape != nil {
			localChanged, leave, weights = m.scrape.local.Changed(), m.scrape.kick, m.scrape.weightsC
		}
		if !ls.scrape.wake.IsZero() {
			linger.Reset(time.Until(ls.scrape.wake))
		}
		select {
		case <-ctx.Done():
			return
		case <-linger.C:
		case <-localChanged:
		case <-leave:
		case p, ok := <-pubs:
			if !ok {
				return
			}
			ls.scrape.pubs, ls.scrape.gotPubs = p, true
		case w, ok := <-weights:
			if !ok { // Run's context ended
				m.scrape.weightsC = nil
				continue
			}
			// Weights change as members' counts cross classes, each
			// member's at most every TargetWeightInterval: coalesced
			// as membership is.
			m.scrape.weights.Store(w)
			if !co.now(time.Now()) {
				continue
			}
		case <-m.gossip.Swaps():
			g, _ = m.gossip.current()
			ls.view.reset()
		case <-changes:
			if !co.now(time.Now()) {
				continue
			}
		case <-co.due():
			co.fired()
		case <-refresh.C:
			m.join(g, ls.live)
		case <-savedC:
			if ls.last == nil { // etcd gave nothing to compute with in time
				m.startOnSaved(ls)
			}
			continue
		case u, ok := <-cfgs:
			if !ok {
				return
			}
			m.mu.Lock()
			m.configSeen = u.Revision
			m.mu.Unlock()
			if !m.takeConfig(ls, u) {
				continue
			}
		case _, ok := <-lw.Changed():
			if !ok {
				return
			}
			ls.liveDue = true
			if !co.now(time.Now()) {
				continue
			}
		}
		start := time.Now()
		co.evaluated(start)
		if ls.liveDue {
			m.takeLive(ls, lw.Snapshot(), g)
		}
		m.evaluate(ls, g)
		took := time.Since(start)
		co.took(took)
		m.mu.Lock()
		m.evalTime += took
		m.mu.Unlock()
	}
}

// takeLive takes the live members from etcd's watch.
func (m *Member) takeLive(ls *loopState, set members, g *gossip.Gossip) {
	ls.live, ls.gotLive, ls.liveDue = set, true, false
	m.mu.Lock()
	m.gotLive = true
	m.mu.Unlock()
	m.countLive(set)
	m.join(g, set)
}

// takeConfig takes a config update from etcd and reports whether it
// changed the config the member computes with.
func (m *Member) takeConfig(ls *loopState, u configstore.Update) bool {
	if u.Deleted {
		m.setError(&m.configErr, fmt.Errorf("config deleted at revision %d; keeping revision %d", u.Revision, ls.rev))
		return false
	}
	c, err := config.ParseCluster(u.Data)
	if err != nil {
		m.reject(u.Revision)
		m.setError(&m.configErr, fmt.Errorf("config revision %d not applied, keeping revision %d: %w", u.Revision, ls.rev, err))
		return false
	}
	m.setError(&m.configErr, nil)
	ls.cluster, ls.data, ls.rev = &c, u.Data, u.Revision
	m.mu.Lock()
	m.gotConfig = true
	m.mu.Unlock()
	if m.scrape != nil {
		m.scrape.setJobs(c.ScrapeConfigs)
	}
	return true
}

// evaluate takes the gossip's view (none when g is nil), computes the
// member's settings once etcd gave the config and the members, and hands
// them out, and saves them, when they changed.
func (m *Member) evaluate(ls *loopState, g *gossip.Gossip) {
	if g != nil {
		ls.view.observe(g.Members(), g.States(), ls.live, time.Now())
	}
	_, why := m.gossip.current()
	m.mu.Lock()
	m.evals++
	changed := m.status.Gossip != why || !slices.Equal(m.status.Down, ls.view.down)
	m.status.Gossip, m.status.Down = why, slices.Clone(ls.view.down)
	m.mu.Unlock()
	if changed {
		m.writeStatus()
	}
	if ls.cluster == nil || !ls.gotLive {
		return
	}
	if m.scrape != nil {
		m.scrape.evaluate(ls, g)
	}
	up, err := m.compute(*ls.cluster, ls.rev, ls.view.withoutGone(ls.live), ls.view.down)
	if err != nil {
		m.reject(ls.rev)
	}
	m.setError(&m.computeErr, err)
	if err != nil {
		return
	}
	m.applyStatusInterval(ls.cluster.Status.Interval.D())
	if ls.onSaved {
		ls.onSaved = false
		m.log.Info("etcd answered: the settings now come from it, no longer from the saved state", "revision", ls.rev)
		m.setSaved("")
	}
	if ls.last != nil && equalUpdate(*ls.last, up) {
		return
	}
	ls.last = &up
	m.publish(up)
	m.save(ls, up)
}

// startOnSaved hands out the saved state: etcd gave no config in time.
func (m *Member) startOnSaved(ls *loopState) {
	s := ls.saved
	ls.last, ls.onSaved = s, true
	why := "etcd gave no config within " + m.cfg.StateWait.String()
	if err := m.Pending(); err != nil {
		why = err.Error()
	}
	m.log.Warn("starting on the saved cluster state until etcd answers", "revision", s.Revision,
		"upstreams", s.Assignment.Upstreams, "budget", s.Assignment.Budget, "why", why)
	m.setSaved(fmt.Sprintf("running on the saved state of config revision %d without etcd (%s)", s.Revision, why))
	m.publish(*s)
}

// setSaved records in the status whether the member runs on its saved
// state ("" when not).
func (m *Member) setSaved(msg string) {
	m.mu.Lock()
	m.status.SavedState = msg
	m.mu.Unlock()
	m.writeStatus()
}

// save writes the settings handed out from etcd's state to the state
// file, if any. A failure is logged (once until it changes or clears):
// the member runs on without it.
func (m *Member) save(ls *loopState, u Update) {
	if m.cfg.StateFile == "" {
		return
	}
	err := saveState(m.cfg.StateFile, savedState{
		Format: savedFormat, Cluster: m.cfg.Cluster, Node: m.cfg.Node, Kind: m.cfg.Kind,
		Revision: ls.rev, Config: string(ls.data), Upstreams: u.Assignment.Upstreams, Budget: u.Assignment.Budget,
		Saved: time.Now().UTC(),
	})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != m.saveErr && err != nil {
		m.log.Warn("cannot save the cluster state; a start without etcd will wait for it", "file", m.cfg.StateFile, "err", err)
	}
	m.saveErr = msg
}

// loadSaved reads the state file, if any, into the settings to hand out
// when etcd gives none at start, nil when there are none, and the status
// interval to start with: the saved revision's, else the default.
func (m *Member) loadSaved() (*Update, time.Duration) {
	every := config.DefaultCluster().Status.Interval.D()
	if m.cfg.StateFile == "" {
		return nil, every
	}
	st, err := loadState(m.cfg.StateFile, m.cfg)
	if errors.Is(err, errNoSavedState) {
		m.log.Info("no saved cluster state yet; a start without etcd waits for it", "file", m.cfg.StateFile)
		return nil, every
	}
	if err == nil {
		var u Update
		var c config.Cluster
		if u, c, err = m.savedUpdate(st); err == nil {
			m.log.Info("saved cluster state found", "file", m.cfg.StateFile, "revision", st.Revision, "saved", st.Saved)
			return &u, c.Status.Interval.D()
		}
	}
	m.log.Warn("cannot use the saved cluster state; a start without etcd waits for it", "err", err)
	return nil, every
}

// compute runs the ring for the live agents and relays (this member
// included even before its registration shows) and builds this member's
// settings.
func (m *Member) compute(c config.Cluster, rev int64, live members, down []string) (Update, error) {
	self := memberID{m.cfg.Kind, m.cfg.Node}
	if l := m.computed; l != nil && l.rev == rev && sameIDs(l.live, live, self) && slices.Equal(l.down, down) {
		return l.up, nil
	}
	byKind := map[keys.Kind][]string{}
	for id := range live {
		byKind[id.Kind] = append(byKind[id.Kind], id.Node)
	}
	if _, ok := live[self]; !ok {
		byKind[m.cfg.Kind] = append(byKind[m.cfg.Kind], m.cfg.Node)
	}
	in := ring.Input{
		Revision:  rev,
		Fallbacks: c.Ring.Fallbacks,
		Agents:    byKind[keys.Agent],
		Relays:    byKind[keys.Relay],
		Down:      down,
		Ring:      ring.Config{PartitionCount: c.Ring.Partitions, ReplicationFactor: c.Ring.Replicas, Load: c.Ring.LoadFactor},
	}
	urls, names := map[string]string{}, map[string]string{}
	for _, e := range c.Endpoints() {
		in.Upstreams = append(in.Upstreams, ring.Upstream{Name: e.Name, URL: e.URL, Capacity: e.Capacity, Relay: e.Relay})
		urls[e.Name] = e.URL
		names[endpointLabel(e.URL)] = e.Name
	}
	m.mu.Lock()
	m.names = names
	m.mu.Unlock()
	compute := ring.Compute
	if m.cfg.RingCompute != nil {
		compute = m.cfg.RingCompute
	}
	all, err := compute(in)
	if err != nil && !errors.Is(err, ring.ErrNoLiveUpstream) {
		return Update{}, fmt.Errorf("ring for config revision %d: %w", rev, err)
	}
	a := all[m.cfg.Node]
	// Compute cuts every member's upstreams from one array: a copy, so
	// that the Update kept until the next change holds this member's
	// list, not the whole fleet's.
	a.Upstreams = slices.Clone(a.Upstreams)
	agentCfg, err := c.AgentConfig(m.cfg.Node, m.cfg.Labels, m.local)
	if err != nil {
		return Update{}, fmt.Errorf("config revision %d not applied: %w", rev, err)
	}
	agentCfg.Ship.Upstreams = nil
	for _, name := range a.Upstreams {
		agentCfg.Ship.Upstreams = append(agentCfg.Ship.Upstreams, urls[name])
	}
	agentCfg.Ship.Strategy = config.StrategyOrdered
	agentCfg.Limit.BytesPerSecond = config.ByteRate(a.Budget)
	m.noteCredentials(agentCfg.Ship.CredentialProblems())
	up := Update{Revision: rev, Agent: agentCfg, Assignment: a}
	ids := maps.Clone(live)
	ids[self] = liveMember{}
	m.computed = &computedUpdate{rev: rev, live: ids, down: slices.Clone(down), up: up}
	return up, nil
}

// computedUpdate is what compute computed last, and from what: the loop
// evaluates at every refresh and gossip change, but the ring and the
// settings change only with the config revision, the live agents and
// relays, and the upstreams held down. With the same inputs compute
// returns the same Update without running the ring or the config again.
// live is a copy of the set compute was given, this member in it (it
// counts before its registration shows); the copy costs a tenth of the
// ring it spares.
type computedUpdate struct {
	rev  int64
	live members
	down []string
	up   Update
}

// sameIDs reports whether last holds the members of live and self, and
// no other (their values aside: the ring takes only kinds and names).
func sameIDs(last, live members, self memberID) bool {
	n := len(live)
	if _, ok := live[self]; !ok {
		n++
	}
	if _, ok := last[self]; !ok || len(last) != n {
		return false
	}
	for id := range live {
		if _, ok := last[id]; !ok {
			return false
		}
	}
	return true
}

func equalUpdate(a, b Update) bool {
	return a.Revision == b.Revision && a.Assignment.Budget == b.Assignment.Budget &&
		slices.Equal(a.Assignment.Upstreams, b.Assignment.Upstreams)
}

// join asks the gossip to join a few live members it does not know yet:
// memberlist spreads the rest, so joining everyone would only multiply the
// work (quadratic as a fleet starts). At most one join a second; the
// refresh tick catches up.
func (m *Member) join(g *gossip.Gossip, live members) {
	if g == nil || time.Since(m.lastJoin) < time.Second {
		return
	}
	known := map[string]bool{}
	for _, n := range g.Members() {
		known[n] = true
	}
	var addrs []string
	for id, mem := range live {
		if !known[id.Node] && id.Node != m.cfg.Node && mem.Address != "" {
			addrs = append(addrs, mem.Address)
		}
	}
	if len(addrs) == 0 {
		return
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(addrs) > joinSeeds {
		// Different members pick different seeds, so that no one member
		// takes every join.
		start := int(fnv32(m.cfg.Node) % uint32(len(addrs)))
		addrs = append(addrs[start:], addrs[:start]...)[:joinSeeds]
	}
	if !m.joining.CompareAndSwap(false, true) {
		return
	}
	m.lastJoin = time.Now()
	// A join blocks for up to the TCP timeout on an address that does not
	// answer: never on the loop that hands out settings.
	m.joins.Go(func() {
		defer m.joining.Store(false)
		if _, err := g.Join(addrs); err != nil {
			m.log.Debug("gossip join failed; retrying on the next change", "addrs", addrs, "err", err)
		}
	})
}

// joinSeeds is how many unknown members one join contacts.
const joinSeeds = 3

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// publish hands u out. The status shows a new revision within the
// member's jitter, not at the next rate-limited write, so that an
// operator following a rollout sees it applied.
func (m *Member) publish(u Update) {
	m.published.Store(true)
	m.mu.Lock()
	newRevision := m.status.ConfigRevision != u.Revision
	m.status.ConfigRevision = u.Revision
	m.status.Upstreams = u.Assignment.Upstreams
	m.status.BudgetBytesPerSecond = u.Assignment.Budget
	if u.Revision >= m.status.RejectedRevision {
		m.status.RejectedRevision = 0
	}
	m.mu.Unlock()
	if newRevision {
		m.writeStatusSoon()
	} else {
		m.writeStatus()
	}
	select {
	case <-m.updates:
	default:
	}
	m.updates <- u
}

// applyStatusInterval has the session write the status at most every d,
// status.interval of the config revision the member applies.
func (m *Member) applyStatusInterval(d time.Duration) {
	m.mu.Lock()
	sess := m.sess
	m.mu.Unlock()
	if sess != nil {
		sess.SetStatusInterval(d)
	}
}

// reject records that the member could not apply config revision rev.
func (m *Member) reject(rev int64) {
	m.mu.Lock()
	m.status.RejectedRevision = max(m.status.RejectedRevision, rev)
	m.mu.Unlock()
}

// setError records err (nil clears it) in one of the member's error slots,
// configErr or computeErr; the status reports the first set. A change is
// written within the member's jitter: it tells whether a revision applied.
func (m *Member) setError(slot *string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	m.mu.Lock()
	changed := *slot != msg
	*slot = msg
	m.mu.Unlock()
	if changed {
		if err != nil {
			m.log.Warn("cluster settings not applied", "err", err)
		}
		m.writeStatusSoon()
	}
}
