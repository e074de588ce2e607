// Package cluster turns etcd state into what a member of a procfleet
// cluster runs on. A Member registers the process in etcd (bound to a
// lease), watches the cluster config and the live agents and relays,
// computes the consistent-hash ring like every other member does, and
// hands the agent or relay its effective settings: its ordered upstreams
// and its bandwidth budget. Neither reads etcd itself.
//
// When etcd cannot be reached, the member keeps the last config and
// assignment it handed out, and converges again when etcd returns. With a
// state file it also keeps them on disk, and a member that starts while
// etcd cannot be reached starts on them.
//
// The gossip is soft state: a member that cannot bind its gossip address
// at start fails (Run returns a *gossip.BindError before anything is
// written to etcd), but a gossip that stops or cannot start later leaves
// the member running on etcd alone, which its status says.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

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
	// Address is where the member's HTTP server listens (host:port: an
	// agent's /metrics and /healthz, a relay's import API), registered in
	// its member key as http, for procfleet status. An unspecified host
	// (0.0.0.0, ::, none) is registered as the host of the gossip's
	// address, which other members reach. Default "": none.
	Address string
	// Version is the procfleet version the member runs.
	Version string
	// Etcd says how to reach etcd.
	Etcd etcdclient.Config
	// LeaseTTL is the registration lease's time to live. Default 10s.
	LeaseTTL time.Duration
	// ReregisterSpread is the longest random wait before the member
	// writes its registration again after it lost its lease (etcd down
	// for longer than LeaseTTL), so that a fleet coming back from an
	// outage does not register in the same second; below LeaseTTL.
	// Default 0: half of LeaseTTL; negative: no wait.
	ReregisterSpread time.Duration
	// Gossip configures the member's memberlist node; NodeName, Kind and
	// Cluster are filled in from the fields above. An empty BindAddr means
	// gossip.DefaultConfig(). Its bound address is
	// registered in etcd so that members find each other.
	Gossip gossip.Config
	// NoGossip runs the member without gossip: membership comes from the
	// etcd leases alone (a member that dies leaves when its lease expires)
	// and there are no down votes on upstreams; the status says so. For
	// hosts that cannot reach each other over UDP, and for the fleet
	// simulator, whose thousands of members share one machine. Default
	// false: gossip runs.
	NoGossip bool
	// GossipRetry is how long the member waits before it starts its
	// gossip again after it stopped or could not start (other than a taken
	// address at the first start, which fails Run). Default 30s.
	GossipRetry time.Duration
	// StateFile is where the member keeps the last settings it handed out
	// from etcd (the cluster document, its revision, the assignment), to
	// start on them when etcd cannot be reached; see StateFileName. It is
	// host-local, written atomically, mode 0600. Default "": none kept.
	StateFile string
	// StateWait is how long Run waits for etcd's config before it hands
	// out the saved state. Waiting a little spares a member whose etcd
	// answers a start on settings that are about to change (some apply
	// only at the next start). Default 2s.
	StateWait time.Duration
	// RecomputeEvery bounds how often changes of membership and of the
	// gossip's view make the member recompute its settings (the ring):
	// the first change after a quiet spell is taken at once, those that
	// follow within RecomputeEvery together at its end, so that a rolling
	// restart of a large fleet costs each member a few recomputes a
	// second, not one per event. Config changes are taken at once.
	// Default 250ms.
	RecomputeEvery time.Duration
	// RecomputeShare is the share of its time a member may spend in the
	// recomputes that membership and gossip changes cause: after one that
	// took d, the next waits d/RecomputeShare when that is longer than
	// RecomputeEvery, at most RecomputeMost. The ring's cost grows with the
	// fleet, and the wait for a CPU on a busy host shows in d too, so a
	// member of a large fleet, or on a loaded host, recomputes less often
	// instead of taking more of the host. Default 0.01 (1%); negative: the
	// spacing is RecomputeEvery alone.
	RecomputeShare float64
	// RecomputeMost caps the spacing RecomputeShare sets. Default 5s.
	RecomputeMost time.Duration
	// RingCompute computes the ring; nil means ring.Compute. Every member
	// computes the same result from the same etcd state, so the fleet
	// simulator (bench/fleet), which runs thousands of members in one
	// process, shares one memoised computation among them instead of
	// paying it once per member; a member's own cost is BenchmarkChurn's.
	// The function must not modify its input or keep the returned map's
	// values shared with callers that modify them. Agents leave it nil.
	RingCompute func(ring.Input) (map[string]ring.Assignment, error)
	// TargetReportInterval is how often an agent rewrites its target
	// report (target-reports/<node>) at most, unless its targets changed.
	// Default DefaultTargetReportInterval.
	TargetReportInterval time.Duration
	// TargetWeightInterval is how often an agent rewrites its weight list
	// (target-weights/<node>: the weight classes of the placement cluster
	// targets it scraped) at most; it writes only when a class changed.
	// Default DefaultTargetWeightInterval.
	TargetWeightInterval time.Duration
	// Metrics receives the member's procfleet_cluster_* gauges (config
	// revision applied, budget, registered members by kind, gossip
	// running, saved state) and the running gossip's procfleet_gossip_*
	// series, for the agent's or relay's /metrics. One member per set.
	// Default: a private set (see Member.Metrics).
	Metrics *metrics.Set
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
	gossip  *gossipRunner
	scrape  *scrapeRunner // nil for a relay: relays do not scrape
	// computed is the last compute's inputs and result; only the loop
	// touches it.
	computed *computedUpdate

	published atomic.Bool // an Update was handed out

	mu         sync.Mutex
	sess       *session.Session
	evals      uint64            // the loop's evaluations of the gossip; tests wait on it
	evalTime   time.Duration     // spent in them, for the churn benchmark
	configSeen int64             // revision of the last config the watch delivered
	events     atomic.Uint64     // membership events etcd's watch delivered
	gotConfig  bool              // etcd gave a config the member could parse
	gotLive    bool              // etcd gave the members
	live       map[keys.Kind]int // registered members by kind, for the metrics
	saveErr    string            // the last failure to save the state; only the loop touches it
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
	// gossipState is what the member gossips about itself: the shipper's
	// view and its scrape targets scraped.
	gossipState gossip.State
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
	if cfg.ReregisterSpread >= cfg.LeaseTTL {
		return nil, fmt.Errorf("cluster: ReregisterSpread %s is not below LeaseTTL %s", cfg.ReregisterSpread, cfg.LeaseTTL)
	}
	if cfg.GossipRetry <= 0 {
		cfg.GossipRetry = 30 * time.Second
	}
	if cfg.TargetReportInterval <= 0 {
		cfg.TargetReportInterval = DefaultTargetReportInterval
	}
	if cfg.TargetWeightInterval <= 0 {
		cfg.TargetWeightInterval = DefaultTargetWeightInterval
	}
	if cfg.StateWait <= 0 {
		cfg.StateWait = 2 * time.Second
	}
	if cfg.RecomputeEvery <= 0 {
		cfg.RecomputeEvery = 250 * time.Millisecond
	}
	if cfg.RecomputeShare == 0 {
		cfg.RecomputeShare = 0.01
	}
	if cfg.RecomputeMost <= 0 {
		cfg.RecomputeMost = 5 * time.Second
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
	m := &Member{cfg: cfg, local: local, log: log.With("component", "cluster"), base: log, space: space, updates: make(chan Update, 1),
		status: Status{Node: cfg.Node, Kind: string(cfg.Kind)}}
	m.gossip = newGossipRunner(cfg.Gossip, cfg.GossipRetry, m.log, log)
	if cfg.NoGossip {
		m.gossip.why = gossipDisabled
	}
	if m.cfg.Metrics == nil {
		m.cfg.Metrics = metrics.NewSet()
	}
	m.registerMetrics(m.cfg.Metrics)
	if cfg.Kind == keys.Agent {
		if m.scrape, err = newScrapeRunner(m, local); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetAddress replaces Config.Address, for a process that knows its HTTP
// address only once it listens. It must be called before Run.
func (m *Member) SetAddress(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Address = addr
}

// Stats counts a member's work since New, for benchmarks and the fleet
// simulator (bench/fleet).
type Stats struct {
	// Recomputes counts the evaluations of the member's settings (the
	// ring included once etcd gave the config and the members).
	Recomputes uint64
	// RecomputeTime is the wall time spent in them.
	RecomputeTime time.Duration
	// MemberEvents counts the membership events (registrations and
	// departures of any member) etcd's watch delivered to the member.
	MemberEvents uint64
	// Registrations counts the leases the member registered with: 1
	// after the first registration, one more for each re-registration
	// (after etcd lost the lease).
	Registrations int
	// ConfigSeen is the revision of the last cluster document etcd's
	// watch delivered to the member, taken or not: a member whose
	// settings lag behind it is slow to evaluate, one whose ConfigSeen
	// lags was not told.
	ConfigSeen int64
}

// Stats returns the member's counters.
func (m *Member) Stats() Stats {
	m.mu.Lock()
	st := Stats{Recomputes: m.evals, RecomputeTime: m.evalTime, MemberEvents: m.events.Load(), ConfigSeen: m.configSeen}
	sess := m.sess
	m.mu.Unlock()
	if sess != nil {
		info, _ := sess.Info()
		st.Registrations = info.Registrations
	}
	return st
}

// Metrics returns the set the member reports to (Config.Metrics).
func (m *Member) Metrics() *metrics.Set { return m.cfg.Metrics }

// Updates delivers the member's settings each time they change, latest
// only: an update not yet taken is replaced by a newer one.
func (m *Member) Updates() <-chan Update { return m.updates }

// Run starts the gossip, registers the member and keeps its settings
// current until ctx ends, then deregisters it. It returns a
// *gossip.BindError, having written nothing to etcd, when the gossip
// cannot listen on its address. It returns after every goroutine it
// started exited.
func (m *Member) Run(ctx context.Context) error {
	saved, statusEvery := m.loadSaved()
	var g *gossip.Gossip
	if !m.cfg.NoGossip {
		var stopGossip func()
		var err error
		g, stopGossip, err = m.startGossip(ctx)
		defer stopGossip()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	cli, err := etcdclient.New(m.cfg.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	addr := ""
	if g != nil {
		addr = g.Addr()
	}
	opts := []session.Option{session.WithTTL(m.cfg.LeaseTTL), session.WithLogger(m.base), session.WithStatusInterval(statusEvery)}
	if sp := m.cfg.ReregisterSpread; sp != 0 {
		opts = append(opts, session.WithReregisterSpread(max(sp, 0)))
	}
	sess, err := session.New(cli, m.cfg.Cluster, m.cfg.Node, session.Member{
		Address: addr, HTTP: httpAddress(m.address(), addr), Version: m.cfg.Version, Labels: m.cfg.Labels, Kind: m.cfg.Kind,
	}, opts...)
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
	var pubs <-chan publishedSets
	if m.scrape != nil {
		pubs = m.scrape.start(ctx, &wg, cli, sess)
	}
	m.loop(ctx, saved, store.Watch(ctx), watchMembers(ctx, cli, m.space, m.log, &m.events), pubs)
	m.joins.Wait()
	wg.Wait()
	if errors.Is(sessErr, context.Canceled) {
		sessErr = nil
	}
	return sessErr
}

// startGossip starts the member's gossip and waits until its first start
// is over. It returns the running gossip, nil when it could not start for
// another reason than its address (the member then runs on etcd alone
// while the gossip retries), and a function that stops the gossip, letting
// it leave, and waits for it. err is the *gossip.BindError of a taken
// address, or ctx's error when ctx ended first.
func (m *Member) startGossip(ctx context.Context) (*gossip.Gossip, func(), error) {
	started := make(chan *gossip.Gossip, 1)
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- m.gossip.Run(gctx, func(g *gossip.Gossip) { started <- g }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done // nil once started: later failures are logged
		})
	}
	select {
	case g := <-started:
		return g, stop, nil
	case <-ctx.Done():
		return nil, stop, ctx.Err()
	case err := <-done:
		once.Do(cancel)
		return nil, stop, err
	}
}

func (m *Member) address() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Address
}

// httpAddress is the HTTP address listen as others reach it: an
// unspecified host is replaced by the host of gossipAddr, the gossip's
// address, when known.
func httpAddress(listen, gossipAddr string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || gossipAddr == "" {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	ghost, _, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		return listen
	}
	return net.JoinHostPort(ghost, port)
}

func validateCluster(data []byte) error {
	_, err := config.ParseCluster(data)
	return err
}
