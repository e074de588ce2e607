package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/agent/scrape"
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
	gossipKeyFile   string
}

func (mf *memberFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&mf.node, "node", "", "node name in the cluster (default: the host name)")
	f.StringVar(&mf.labels, "labels", "", "labels registered with the node, k=v,k2=v2; config overrides select on them")
	f.StringVar(&mf.gossipListen, "gossip-listen", "0.0.0.0:7946", "address the gossip (memberlist, TCP and UDP) listens on; port 0 picks a free one")
	f.StringVar(&mf.gossipAdvertise, "gossip-advertise", "", "address other members reach the gossip at, when not the listen address (NAT, containers)")
	f.StringVar(&mf.gossipKeyFile, "gossip-key-file", os.Getenv("PROCFLEET_GOSSIP_KEY_FILE"), "host-local file with the gossip's encryption key, base64 of 16, 24 or 32 random bytes (one key a line; the first encrypts, all decrypt); members without it cannot join or vote ($PROCFLEET_GOSSIP_KEY_FILE)")
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
	if mf.gossipKeyFile != "" {
		keys, err := gossip.LoadKeyFile(mf.gossipKeyFile)
		if err != nil {
			return gc, fmt.Errorf("--gossip-key-file: %w", err)
		}
		gc.SecretKey, gc.ExtraKeys = keys.Primary, keys.Extra
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

// nodeName returns the member's node name: --node, else fallback, else
// the host name in lower case.
func (mf *memberFlags) nodeName(fallback string) (string, error) {
	node := mf.node
	if node == "" {
		node = fallback
	}
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("cannot get host name, set --node: %w", err)
		}
		node = strings.ToLower(h)
	}
	return node, nil
}

// member builds this process's cluster member from the flags. Its node name
// is --node, else fallback, else the host name in lower case; address is
// its HTTP server's, registered for procfleet status; local gives the
// host-local settings (and its Hostname defaults to the node name).
// stateDir, when set, is where the member keeps its saved state.
func (mf *memberFlags) member(kind keys.Kind, fallback, address string, local config.Agent, stateDir string, ef etcdFlags, logger *slog.Logger) (*cluster.Member, string, error) {
	node, err := mf.nodeName(fallback)
	if err != nil {
		return nil, "", err
	}
	labels, err := config.ParseLabels(mf.labels)
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
	cc := cluster.Config{
		Cluster: ef.cluster, Node: node, Kind: kind, Labels: labels,
		Address: address, Version: version, Etcd: ef.config(), LeaseTTL: mf.leaseTTL, Gossip: gc,
	}
	if stateDir != "" {
		cc.StateFile = filepath.Join(stateDir, cluster.StateFileName)
	}
	m, err := cluster.New(cc, local, logger)
	if err != nil {
		return nil, "", usageError{err}
	}
	return m, node, nil
}

// memberRun is a member running beside the agent or relay.
type memberRun struct {
	done <-chan error // receives Run's error, once, if it returns by itself
	stop func() error
}

// runMember runs m until stop is called (m runs on after ctx is
// cancelled, so that it deregisters last). done receives Run's error if
// Run returns before stop; stop waits for m and returns its error, context
// cancellation aside; it may be called more than once.
func runMember(ctx context.Context, m *cluster.Member) memberRun {
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	res := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		err := m.Run(mctx)
		res <- err
		if mctx.Err() == nil {
			if err == nil {
				err = errors.New("the cluster member stopped")
			}
			done <- memberError(err)
		}
	}()
	var once sync.Once
	var err error
	return memberRun{done: done, stop: func() error {
		once.Do(func() {
			cancel()
			err = memberError(ignoreCanceled(<-res))
		})
		return err
	}}
}

// memberError names the flag to change in a member's error.
func memberError(err error) error {
	if be, ok := errors.AsType[*gossip.BindError](err); ok {
		return fmt.Errorf("cannot listen on %s (--gossip-listen): %v; pick another port with --gossip-listen", be.Addr, be.Err)
	}
	return err
}

// listenFirst binds the self HTTP address of a clustered agent before the
// member registers: a member that cannot serve must not take a share of
// the ring. nil when the server is off.
func listenFirst(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		reason := err
		if se, ok := errors.AsType[*os.SyscallError](err); ok {
			reason = se.Err
		}
		return nil, fmt.Errorf("cannot listen on %s (--listen): %v; pick another port with --listen", addr, reason)
	}
	return ln, nil
}

// pendingLogEvery is how often a member without settings says why. Tests
// shorten it.
var pendingLogEvery = 30 * time.Second

// waitFirst waits for the member's first settings, logging every
// pendingLogEvery why there are none yet. ok is false when ctx ended
// first (err nil) or the member failed (err).
func waitFirst(ctx context.Context, m *cluster.Member, run memberRun, logger *slog.Logger) (first cluster.Update, ok bool, err error) {
	tick := time.NewTicker(pendingLogEvery)
	defer tick.Stop()
	for {
		select {
		case first = <-m.Updates():
			return first, true, nil
		case err := <-run.done:
			return first, false, err
		case <-ctx.Done():
			return first, false, nil
		case <-tick.C:
			if why := m.Pending(); why != nil {
				logger.Warn("no settings from the cluster yet: scanning nothing; /readyz says why", "why", why)
			}
		}
	}
}

// runClustered runs the agent as a member of a cluster: its upstreams,
// budget and most settings come from etcd, applied live. It binds the
// listen address and the gossip first, and fails before registering when
// either is taken. Until the first settings arrive (from etcd, or from the
// state saved under the spool directory when etcd cannot be reached) it
// answers /healthz, and /readyz with the reason. opts go to the agent
// after the ones runClustered gives it (a later WithCluster, with the
// cluster page's URL, wins).
func runClustered(ctx context.Context, local config.Agent, ef etcdFlags, mf memberFlags, logger *slog.Logger, opts ...agent.Option) error {
	ln, err := listenFirst(local.Listen)
	if err != nil {
		return err
	}
	httpAddr := ""
	if ln != nil {
		httpAddr = ln.Addr().String() // with the port picked for :0
	}
	m, node, err := mf.member(keys.Agent, "", httpAddr, local, local.Spool.Dir, ef, logger)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	var ws *waitServer
	if ln != nil {
		ws = newWaitServer(ln, m.Pending)
	}
	closeWait := func() {
		if ws != nil {
			ws.close()
		}
	}
	run := runMember(ctx, m)
	defer run.stop()
	logger.Info("waiting for the first assignment from the cluster", "cluster", ef.cluster, "node", node)
	first, ok, err := waitFirst(ctx, m, run, logger)
	if !ok {
		closeWait()
		return err
	}
	opts = append([]agent.Option{agent.WithMetricsSet("cluster", m.Metrics()),
		agent.WithCluster(agent.ClusterInfo{Cluster: ef.cluster, Node: node})}, opts...)
	a, err := agent.New(first.Agent, logger, opts...)
	if err != nil {
		closeWait()
		return fmt.Errorf("config revision %d: %w", first.Revision, err)
	}
	if ws != nil {
		a.UseListener(ws.handOver())
	}
	return runAgentMember(ctx, a, m, run, logger)
}

// runAgentMember runs a beside its member, applying the member's settings
// as they change, until ctx ends or either fails.
//
// When ctx ends, the member first hands its scrape targets over (see
// cluster.Member.Leave, at most leaveTimeout), the agent scraping them
// meanwhile; then the agent stops, and the member last.
func runAgentMember(ctx context.Context, a *agent.Agent, m *cluster.Member, run memberRun, logger *slog.Logger) error {
	actx, stopAgent := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAgent()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(actx) }()
	select {
	case <-a.Ready():
	case err := <-errc:
		return errors.Join(err, run.stop())
	case <-ctx.Done():
		stopAgent()
		return errors.Join(<-errc, run.stop())
	}
	lctx, cancelLeave := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLeave()
	stopping := ctx.Done()
	var left chan struct{}
	report := time.NewTicker(2 * time.Second)
	defer report.Stop()
	targets := newTargetReports()
	defer targets.stop()
	for {
		select {
		case <-stopping:
			stopping, left = nil, make(chan struct{})
			go func() {
				tctx, cancel := context.WithTimeout(lctx, leaveTimeout)
				defer cancel()
				m.Leave(tctx)
				close(left)
			}()
		case <-left:
			stopAgent()
			return errors.Join(<-errc, run.stop())
		case err := <-errc:
			return errors.Join(err, run.stop())
		case err := <-run.done:
			logger.Error("the cluster member stopped; stopping the agent", "err", err)
			stopAgent()
			return errors.Join(err, <-errc)
		case u := <-m.Updates():
			if err := a.Apply(ctx, u.Agent); err != nil && !errors.Is(err, agent.ErrNotRunning) {
				logger.Warn("cannot apply cluster settings", "revision", u.Revision, "err", err)
			} else {
				logger.Info("applied cluster settings", "revision", u.Revision, "upstreams", u.Assignment.Upstreams, "budget", u.Assignment.Budget)
			}
		case ts := <-m.ScrapeTargets():
			agentProcsPolicy.scraping(len(ts) > 0)
			a.SetTargets(ts)
			targets.given(ts)
		case <-report.C:
			reportShipper(a, m)
		case <-targets.c:
			states := a.Targets()
			m.ReportTargets(states)
			targets.reported(states)
		}
	}
}

// targetReportEvery is how often a clustered agent hands its scraper's
// states to its member while it scrapes: often enough that a member
// handing targets over to this one sees them scraped within a second
// (the first scrape, this report, the gossip); etcd writes are
// rate-limited apart.
const targetReportEvery = 500 * time.Millisecond

// targetReports paces the reports of the scraper's states to the member
// (cluster.Member.ReportTargets): every targetReportEvery while the agent
// is given targets or still scrapes some, once more when it has none,
// then not until the member hands out targets again. An agent that
// scrapes nothing, as most do, does not wake for it. Only the command's
// loop touches it.
type targetReports struct {
	t       *time.Ticker
	c       <-chan time.Time // t's channel while reports are due, else nil
	scrapes bool             // the last targets given were not empty
}

// newTargetReports returns the pacing of an agent given no targets yet:
// no report is due.
func newTargetReports() *targetReports {
	t := time.NewTicker(targetReportEvery)
	t.Stop()
	return &targetReports{t: t}
}

// given notes the targets handed to the scraper (an empty set too, so
// that the member hears the last ones are gone), and reports until it
// scrapes none.
func (tr *targetReports) given(ts []scrape.Target) {
	tr.scrapes = len(ts) > 0
	if tr.c == nil {
		tr.t.Reset(targetReportEvery)
		tr.c = tr.t.C
	}
}

// reported notes the states just reported: once the agent scrapes
// nothing and is given nothing, the reports stop.
func (tr *targetReports) reported(states []scrape.TargetState) {
	if len(states) == 0 && !tr.scrapes {
		tr.t.Stop()
		tr.c = nil
	}
}

func (tr *targetReports) stop() { tr.t.Stop() }

// leaveTimeout bounds how long a stopping agent keeps scraping the
// targets it hands over.
const leaveTimeout = 30 * time.Second

// opinionAge is how long after its last send or probe the shipper's view
// of an endpoint still counts as an opinion in the gossip.
const opinionAge = time.Minute

func reportShipper(a *agent.Agent, m *cluster.Member) {
	sh := a.Shipper()
	m.ReportShipper(sh.QueueLen()+sh.SpoolLen(), endpointHealth(sh.State(), time.Now()), sh.SentBytes())
}

// endpointHealth turns the shipper's view of its endpoints, in the order
// of the member's assignment (a clustered shipper's strategy is ordered),
// into the member's health report at now. A view counts as an opinion in
// the gossip's down rule (Recent) when the shipper sent to the endpoint or
// probed it within opinionAge, and, when it says healthy, only while the
// shipper still sends there: up to the first healthy endpoint that no
// Retry-After holds back, which takes the batches. A fallback that took a
// batch while the primary was briefly out (a relay still starting) is not
// sent to again, so its "healthy" would stand for a minute without anyone
// checking it, and tie the vote of the member that finds that upstream
// gone: that held a failover back for up to a minute (make e2e's compose
// test, after vm1 stopped, with agent2's send to vm1 of its first second).
// An unhealthy endpoint is probed, so its view stays current.
func endpointHealth(states []ship.EndpointState, now time.Time) []cluster.EndpointHealth {
	var eps []cluster.EndpointHealth
	sending := false // an endpoint before this one takes the batches
	for _, e := range states {
		recent := now.Sub(e.LastSuccessAt) < opinionAge || now.Sub(e.LastErrorAt) < opinionAge
		if e.Healthy && sending {
			recent = false
		}
		if e.Healthy && !e.Unusable && !e.ThrottledUntil.After(now) {
			sending = true
		}
		h := cluster.EndpointHealth{URL: e.URL, Healthy: e.Healthy, Recent: recent, LastError: e.LastError}
		if e.Protocol != config.ProtocolImport {
			h.Protocol = e.Protocol
		}
		eps = append(eps, h)
	}
	return eps
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
