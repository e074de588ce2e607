// Package cluster turns etcd state into what a member of a procfleet
// cluster runs on. A Member registers the process in etcd (bound to a
// lease), watches the cluster config and the live agents and relays,
// computes the consistent-hash ring like every other member does, and
// hands the agent or relay its effective settings: its ordered upstreams
// and its bandwidth budget. Neither reads etcd itself.
//
// When etcd cannot be reached, the member keeps the last config and
// assignment it handed out, and converges again when etcd returns.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/ring"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/config"
)

// Config describes one member.
type Config struct {
	// Cluster is the cluster's name: keys live under /procfleet/<Cluster>/.
	Cluster string
	// Node is the member's node name, unique in the cluster.
	Node string
	// Kind is keys.Agent or keys.Relay.
	Kind keys.Kind
	// Labels are registered with the member; config overrides select on them.
	Labels map[string]string
	// Address is where the member can be reached (its self HTTP server).
	Address string
	// Version is the procfleet version the member runs.
	Version string
	// Etcd says how to reach etcd.
	Etcd etcdclient.Config
	// LeaseTTL is the registration lease's time to live. Default 10s.
	LeaseTTL time.Duration
	// Gossip configures the member's memberlist node; NodeName, Kind and
	// Cluster are filled in from the fields above. An empty BindAddr means
	// gossip.DefaultConfig(). Its bound address is
	// registered in etcd so that members find each other.
	Gossip gossip.Config
}

// Update is what the member hands the agent or relay after each change.
type Update struct {
	// Revision is the config revision the settings come from.
	Revision int64
	// Agent is the agent's effective settings: its local file, then the
	// cluster's agents block and matching overrides, with ship.upstreams
	// set to the assignment's URLs (in order, ship.strategy ordered) and
	// limit.bytes_per_second to its budget (0, unlimited, when no budget
	// is known). A relay's is built the same way from the local settings
	// given to New; a relay uses its ship.upstreams, ship.strategy and
	// limit, which never name a relay upstream.
	Agent config.Agent
	// Assignment is the ring's answer for this member.
	Assignment ring.Assignment
}

// Member is one process's part of the cluster. New starts nothing; Run runs
// it. Its methods are safe for concurrent use.
type Member struct {
	cfg   Config
	local config.Agent
	log   *slog.Logger // with component=cluster
	base  *slog.Logger // for the parts that name their own component
	space keys.Space

	updates chan Update

	mu         sync.Mutex
	sess       *session.Session
	gossip     *gossip.Gossip
	status     Status
	configErr  string            // the newest config could not be applied
	computeErr string            // the settings could not be computed
	credErr    string            // assigned upstreams this host has no credential for
	names      map[string]string // endpoint label (URL without query) -> upstream name
	sent       uint64            // shipper bytes at the last report
	lastJoin   time.Time         // of the gossip; only the loop touches it
	joining    atomic.Bool       // a gossip join is in flight
	joins      sync.WaitGroup    // the join in flight; Run waits for it
	sentAt     time.Time
}

// New checks cfg and prepares a member whose local agent settings are
// local (host name, listen address, roots; the cluster supplies the rest).
func New(cfg Config, local config.Agent, log *slog.Logger) (*Member, error) {
	space, err := keys.New(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	if err := keys.ValidateNode(cfg.Node); err != nil {
		return nil, err
	}
	if err := cfg.Etcd.Validate(); err != nil {
		return nil, err
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.Gossip.BindAddr == "" {
		cfg.Gossip = gossip.DefaultConfig()
	}
	cfg.Gossip.NodeName, cfg.Gossip.Cluster = cfg.Node, cfg.Cluster
	cfg.Gossip.Kind = gossip.KindAgent
	if cfg.Kind == keys.Relay {
		cfg.Gossip.Kind = gossip.KindRelay
	}
	if err := cfg.Gossip.Validate(); err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Member{cfg: cfg, local: local, log: log.With("component", "cluster"), base: log, space: space, updates: make(chan Update, 1),
		status: Status{Node: cfg.Node, Kind: string(cfg.Kind)}}, nil
}

// Updates delivers the member's settings each time they change, latest
// only: an update not yet taken is replaced by a newer one.
func (m *Member) Updates() <-chan Update { return m.updates }

// Run registers the member and keeps its settings current until ctx ends,
// then deregisters it. It returns after every goroutine it started exited.
func (m *Member) Run(ctx context.Context) error {
	g, err := gossip.New(m.cfg.Gossip, gossip.Deps{Logger: m.base})
	if err != nil {
		return err
	}
	gctx, stopGossip := context.WithCancel(context.WithoutCancel(ctx))
	var gwg sync.WaitGroup
	var gossipErr error
	gwg.Go(func() { gossipErr = g.Run(gctx) })
	defer func() {
		stopGossip()
		gwg.Wait()
		if gossipErr != nil && !errors.Is(gossipErr, context.Canceled) {
			m.log.Warn("gossip stopped with an error", "err", gossipErr)
		}
	}()
	select {
	case <-g.Ready():
	case <-ctx.Done():
		return nil
	}
	m.mu.Lock()
	m.gossip = g
	m.mu.Unlock()
	cli, err := etcdclient.New(m.cfg.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	sess, err := session.New(cli, m.cfg.Cluster, m.cfg.Node, session.Member{
		Address: g.Addr(), Version: m.cfg.Version, Labels: m.cfg.Labels, Kind: m.cfg.Kind,
	}, session.WithTTL(m.cfg.LeaseTTL), session.WithLogger(m.base))
	if err != nil {
		return err
	}
	store, err := configstore.New(cli, m.cfg.Cluster, validateCluster, configstore.WithLogger(m.base))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.sess = sess
	m.mu.Unlock()
	var wg sync.WaitGroup
	var sessErr error
	wg.Go(func() { sessErr = sess.Run(ctx) })
	m.loop(ctx, g, store.Watch(ctx), watchMembers(ctx, cli, m.space, m.log))
	m.joins.Wait()
	wg.Wait()
	if errors.Is(sessErr, context.Canceled) {
		sessErr = nil
	}
	return sessErr
}

func validateCluster(data []byte) error {
	_, err := config.ParseCluster(data)
	return err
}

// loop recomputes the member's settings on every change of config or
// membership.
func (m *Member) loop(ctx context.Context, g *gossip.Gossip, cfgs <-chan configstore.Update, sets <-chan members) {
	var (
		cluster *config.Cluster
		rev     int64
		live    members
		down    []string
		seen    = map[string]string{} // gossip members ever seen, by node: their etcd address then
		gone    map[string]bool       // seen in the gossip, now dead there
		last    *Update
	)
	// Opinions age out of the down rule and restarted members need a
	// fresh join: look again every refresh even when nothing is signalled.
	refresh := time.NewTicker(5 * time.Second)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.Changes():
			down = gossip.Down(g.States(), time.Now())
			gone = m.gossipGone(g, seen)
		case <-refresh.C:
			down = gossip.Down(g.States(), time.Now())
			gone = m.gossipGone(g, seen)
			m.join(g, live)
		case u, ok := <-cfgs:
			if !ok {
				return
			}
			if u.Deleted {
				m.setError(&m.configErr, fmt.Errorf("config deleted at revision %d; keeping revision %d", u.Revision, rev))
				continue
			}
			c, err := config.ParseCluster(u.Data)
			if err != nil {
				m.setError(&m.configErr, fmt.Errorf("config revision %d not applied, keeping revision %d: %w", u.Revision, rev, err))
				continue
			}
			m.setError(&m.configErr, nil)
			cluster, rev = &c, u.Revision
		case set, ok := <-sets:
			if !ok {
				return
			}
			live = set
			m.join(g, live)
		}
		if cluster == nil {
			continue
		}
		up, err := m.compute(*cluster, rev, withoutGone(live, gone, seen), down)
		m.setError(&m.computeErr, err)
		if err != nil {
			continue
		}
		if last != nil && equalUpdate(*last, up) {
			continue
		}
		last = &up
		m.publish(up)
	}
}

// compute runs the ring for the live agents and relays (this member
// included even before its registration shows) and builds this member's
// settings.
func (m *Member) compute(c config.Cluster, rev int64, live members, down []string) (Update, error) {
	byKind := map[keys.Kind][]string{}
	for id := range live {
		byKind[id.Kind] = append(byKind[id.Kind], id.Node)
	}
	if _, ok := live[memberID{m.cfg.Kind, m.cfg.Node}]; !ok {
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
	all, err := ring.Compute(in)
	if err != nil && !errors.Is(err, ring.ErrNoLiveUpstream) {
		return Update{}, fmt.Errorf("ring for config revision %d: %w", rev, err)
	}
	a := all[m.cfg.Node]
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
	return Update{Revision: rev, Agent: agentCfg, Assignment: a}, nil
}

func equalUpdate(a, b Update) bool {
	return a.Revision == b.Revision && a.Assignment.Budget == b.Assignment.Budget &&
		slices.Equal(a.Assignment.Upstreams, b.Assignment.Upstreams)
}

// gossipGone returns the members the gossip saw and now holds dead. The
// gossip detects a killed member in seconds, long before its etcd lease
// expires, so the ring leaves it out from then on.
func (m *Member) gossipGone(g *gossip.Gossip, seen map[string]string) map[string]bool {
	alive := map[string]bool{}
	for _, n := range g.Members() {
		alive[n] = true
		if _, ok := seen[n]; !ok {
			seen[n] = ""
		}
	}
	gone := map[string]bool{}
	for n := range seen {
		if !alive[n] && n != m.cfg.Node {
			gone[n] = true
		}
	}
	return gone
}

// withoutGone drops from live the members, agents and relays alike, that
// the gossip holds dead, unless they registered again since (another
// gossip address or start time): a restarted member counts as soon as etcd
// shows it. seen maps each node the gossip has seen alive to its
// registration then.
func withoutGone(live members, gone map[string]bool, seen map[string]string) members {
	out := make(members, len(live))
	for key, mem := range live {
		n := key.Node
		id := mem.Address + "@" + mem.StartTime.String()
		prev, inGossip := seen[n]
		switch {
		case !gone[n]:
			if inGossip {
				seen[n] = id
			}
			out[key] = mem
		case prev == "" || prev == id:
			// The process the gossip saw die; its lease has not expired yet.
		default:
			out[key] = mem // registered again: a new process
		}
	}
	return out
}

// join asks the gossip to join a few live members it does not know yet:
// memberlist spreads the rest, so joining everyone would only multiply the
// work (quadratic as a fleet starts). At most one join a second; the
// refresh tick catches up.
func (m *Member) join(g *gossip.Gossip, live members) {
	if time.Since(m.lastJoin) < time.Second {
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

func (m *Member) publish(u Update) {
	m.mu.Lock()
	m.status.ConfigRevision = u.Revision
	m.status.Upstreams = u.Assignment.Upstreams
	m.status.BudgetBytesPerSecond = u.Assignment.Budget
	m.mu.Unlock()
	m.writeStatus()
	select {
	case <-m.updates:
	default:
	}
	m.updates <- u
}

// setError records err (nil clears it) in one of the member's error slots,
// configErr or computeErr; the status reports the first set.
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
		m.writeStatus()
	}
}
