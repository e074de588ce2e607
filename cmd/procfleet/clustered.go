package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
)

// memberFlags are the flags of a clustered agent beside the etcd ones.
type memberFlags struct {
	node            string
	labels          string
	leaseTTL        time.Duration
	gossipListen    string
	gossipAdvertise string
}

func (mf *memberFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&mf.node, "node", "", "node name in the cluster (default: the host name)")
	f.StringVar(&mf.labels, "labels", "", "labels registered with the node, k=v,k2=v2; config overrides select on them")
	f.StringVar(&mf.gossipListen, "gossip-listen", "0.0.0.0:7946", "address the gossip (memberlist, TCP and UDP) listens on; port 0 picks a free one")
	f.StringVar(&mf.gossipAdvertise, "gossip-advertise", "", "address other members reach the gossip at, when not the listen address (NAT, containers)")
	f.DurationVar(&mf.leaseTTL, "lease-ttl", 10*time.Second, "time to live of the node's registration in etcd: a node that stops renewing it leaves the ring this long after")
}

// gossipConfig turns the gossip flags into a gossip config.
func (mf *memberFlags) gossipConfig() (gossip.Config, error) {
	gc := gossip.DefaultConfig()
	host, port, err := splitHostPort(mf.gossipListen)
	if err != nil {
		return gc, fmt.Errorf("--gossip-listen: %w", err)
	}
	gc.BindAddr, gc.BindPort = host, port
	if mf.gossipAdvertise != "" {
		if gc.AdvertiseAddr, gc.AdvertisePort, err = splitHostPort(mf.gossipAdvertise); err != nil {
			return gc, fmt.Errorf("--gossip-advertise: %w", err)
		}
	}
	return gc, nil
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port such as 0.0.0.0:7946", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return host, port, nil
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels %q: want k=v pairs separated by commas", s)
		}
		if err := config.ValidateLabel(k, v); err != nil {
			return nil, fmt.Errorf("--labels: %w", err)
		}
		out[k] = v
	}
	return out, nil
}

// member builds this process's cluster member from the flags. Its node name
// is --node, else fallback, else the host name in lower case; local gives
// the host-local settings (and its Hostname defaults to the node name).
func (mf *memberFlags) member(kind keys.Kind, fallback, address string, local config.Agent, ef etcdFlags, logger *slog.Logger) (*cluster.Member, string, error) {
	node := mf.node
	if node == "" {
		node = fallback
	}
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, "", fmt.Errorf("cannot get host name, set --node: %w", err)
		}
		node = strings.ToLower(h)
	}
	labels, err := parseLabels(mf.labels)
	if err != nil {
		return nil, "", usageError{err}
	}
	gc, err := mf.gossipConfig()
	if err != nil {
		return nil, "", usageError{err}
	}
	if local.Hostname == "" {
		local.Hostname = node
	}
	m, err := cluster.New(cluster.Config{
		Cluster: ef.cluster, Node: node, Kind: kind, Labels: labels,
		Address: address, Version: version, Etcd: ef.config(), LeaseTTL: mf.leaseTTL, Gossip: gc,
	}, local, logger)
	if err != nil {
		return nil, "", usageError{err}
	}
	return m, node, nil
}

// runMember runs m until the returned stop is called (or ctx's values
// end: m runs on after ctx is cancelled, so that it deregisters last).
// stop waits for m and returns its error, context cancellation aside; it
// may be called more than once.
func runMember(ctx context.Context, m *cluster.Member) (stop func() error) {
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			err = ignoreCanceled(<-done)
		})
		return err
	}
}

// runClustered runs the agent as a member of a cluster: its upstreams,
// budget and most settings come from etcd, applied live.
func runClustered(ctx context.Context, local config.Agent, ef etcdFlags, mf memberFlags, logger *slog.Logger) error {
	m, node, err := mf.member(keys.Agent, "", local.Listen, local, ef, logger)
	if err != nil {
		return err
	}
	stopMember := runMember(ctx, m)
	defer stopMember()

	logger.Info("waiting for the first assignment from the cluster", "cluster", ef.cluster, "node", node)
	var first cluster.Update
	select {
	case first = <-m.Updates():
	case <-ctx.Done():
		return nil
	}
	a, err := agent.New(first.Agent, logger)
	if err != nil {
		return fmt.Errorf("config revision %d: %w", first.Revision, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	<-a.Ready()
	report := time.NewTicker(2 * time.Second)
	defer report.Stop()
	for {
		select {
		case err := <-errc:
			return errors.Join(err, stopMember())
		case u := <-m.Updates():
			if err := a.Apply(ctx, u.Agent); err != nil && !errors.Is(err, agent.ErrNotRunning) {
				logger.Warn("cannot apply cluster settings", "revision", u.Revision, "err", err)
			} else {
				logger.Info("applied cluster settings", "revision", u.Revision, "upstreams", u.Assignment.Upstreams, "budget", u.Assignment.Budget)
			}
		case <-report.C:
			reportShipper(a, m)
		}
	}
}

// opinionAge is how long after its last send or probe the shipper's view
// of an endpoint still counts as an opinion in the gossip.
const opinionAge = time.Minute

func reportShipper(a *agent.Agent, m *cluster.Member) {
	sh := a.Shipper()
	m.ReportShipper(sh.QueueLen()+sh.SpoolLen(), endpointHealth(sh.State()), sh.SentBytes())
}

// endpointHealth turns the shipper's view of its endpoints into the
// member's health report.
func endpointHealth(states []ship.EndpointState) []cluster.EndpointHealth {
	now := time.Now()
	var eps []cluster.EndpointHealth
	for _, e := range states {
		recent := now.Sub(e.LastSuccessAt) < opinionAge || now.Sub(e.LastErrorAt) < opinionAge
		eps = append(eps, cluster.EndpointHealth{URL: e.URL, Healthy: e.Healthy, Recent: recent, LastError: e.LastError})
	}
	return eps
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
