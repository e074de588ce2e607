// Package cluster turns etcd state into what a member of a procfleet
// cluster runs on. A Member registers the process in etcd (bound to a
// lease), watches the cluster config and the live members, computes the
// consistent-hash ring like every other member does, and hands the agent
// its effective settings: its ordered upstreams and its bandwidth budget.
// The agent never reads etcd itself.
//
// When etcd cannot be reached, the member keeps the last config and
// assignment it handed out, and converges again when etcd returns.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
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
}

// Update is what the member hands the agent after each change.
type Update struct {
	// Revision is the config revision the settings come from.
	Revision int64
	// Agent is the agent's effective settings: its local file, then the
	// cluster's agents block and matching overrides, with ship.upstreams
	// set to the assignment's URLs (in order, ship.strategy ordered) and
	// limit.bytes_per_second to its budget (0, unlimited, when no budget
	// is known).
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

	mu        sync.Mutex
	sess      *session.Session
	status    Status
	lastError string
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
	cli, err := etcdclient.New(m.cfg.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	sess, err := session.New(cli, m.cfg.Cluster, m.cfg.Node, session.Member{
		Address: m.cfg.Address, Version: m.cfg.Version, Labels: m.cfg.Labels, Kind: m.cfg.Kind,
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
	m.loop(ctx, store.Watch(ctx), watchMembers(ctx, cli, m.space, keys.Agent, m.log))
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
func (m *Member) loop(ctx context.Context, cfgs <-chan configstore.Update, members <-chan map[string]session.Member) {
	var (
		cluster *config.Cluster
		rev     int64
		live    map[string]session.Member
		last    *Update
	)
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-cfgs:
			if !ok {
				return
			}
			if u.Deleted {
				m.setError(fmt.Errorf("config deleted at revision %d; keeping revision %d", u.Revision, rev))
				continue
			}
			c, err := config.ParseCluster(u.Data)
			if err != nil {
				m.setError(fmt.Errorf("config revision %d not applied, keeping revision %d: %w", u.Revision, rev, err))
				continue
			}
			cluster, rev = &c, u.Revision
		case set, ok := <-members:
			if !ok {
				return
			}
			live = set
		}
		if cluster == nil {
			continue
		}
		up, err := m.compute(*cluster, rev, live)
		if err != nil {
			m.setError(err)
			continue
		}
		m.setError(nil)
		if last != nil && equalUpdate(*last, up) {
			continue
		}
		last = &up
		m.publish(up)
	}
}

// compute runs the ring for the live agents (this member included even
// before its registration shows) and builds this member's settings.
func (m *Member) compute(c config.Cluster, rev int64, live map[string]session.Member) (Update, error) {
	agents := slices.Collect(maps.Keys(live))
	if m.cfg.Kind == keys.Agent && live[m.cfg.Node].Kind == "" {
		agents = append(agents, m.cfg.Node)
	}
	in := ring.Input{
		Revision:  rev,
		Fallbacks: c.Ring.Fallbacks,
		Agents:    agents,
		Ring:      ring.Config{PartitionCount: c.Ring.Partitions, ReplicationFactor: c.Ring.Replicas, Load: c.Ring.LoadFactor},
	}
	urls := map[string]string{}
	for _, e := range c.Endpoints() {
		in.Upstreams = append(in.Upstreams, ring.Upstream{Name: e.Name, URL: e.URL, Capacity: e.Capacity})
		urls[e.Name] = e.URL
	}
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
	return Update{Revision: rev, Agent: agentCfg, Assignment: a}, nil
}

func equalUpdate(a, b Update) bool {
	return a.Revision == b.Revision && a.Assignment.Budget == b.Assignment.Budget &&
		slices.Equal(a.Assignment.Upstreams, b.Assignment.Upstreams)
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

func (m *Member) setError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
		m.log.Warn("cluster settings not applied", "err", err)
	}
	m.mu.Lock()
	changed := m.lastError != msg
	m.lastError = msg
	m.mu.Unlock()
	if changed {
		m.writeStatus()
	}
}
