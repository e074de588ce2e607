package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/relay"
)

// relayFlags are the relay flags that override the config file.
type relayFlags struct {
	cfgFile   string
	listen    string
	dataDir   string
	upstreams []string
	logLevel  string
}

func (rf *relayFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&rf.cfgFile, "config", "", "relay config file (YAML; see deploy/relay.example.yaml)")
	f.StringVar(&rf.listen, "listen", "0.0.0.0:9478", "import API address, also /metrics, /healthz, /readyz (listen)")
	f.StringVar(&rf.dataDir, "data-dir", "", "directory of the write-ahead log (wal.dir)")
	f.StringArrayVar(&rf.upstreams, "upstream", nil, "import URL to forward to (repeatable); replaces ship.upstreams")
	f.StringVar(&rf.logLevel, "log-level", "info", "debug, info, warn or error (log.level)")
}

// load reads the config file, if any, and applies the flags that were set.
func (rf *relayFlags) load(cmd *cobra.Command, clustered bool) (config.Relay, error) {
	cfg := config.DefaultRelay()
	if rf.cfgFile != "" {
		var err error
		if cfg, err = config.LoadRelayFile(rf.cfgFile); err != nil {
			return cfg, usageError{err}
		}
	}
	f := cmd.Flags()
	if f.Changed("listen") {
		cfg.Listen = rf.listen
	}
	if f.Changed("data-dir") {
		cfg.WAL.Dir = rf.dataDir
	}
	if f.Changed("upstream") {
		cfg.Ship.Upstreams = rf.upstreams
	}
	if f.Changed("log-level") {
		cfg.Log.Level = rf.logLevel
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	if err := checkCredentials(cfg.ConfigFile, cfg.Credentials); err != nil {
		return cfg, err
	}
	if !clustered && len(cfg.Ship.Upstreams) == 0 {
		return cfg, usageError{errors.New("ship.upstreams: empty; want --upstream URL (repeatable), or --etcd to take upstreams from a cluster")}
	}
	return cfg, nil
}

func newRelayCmd() *cobra.Command {
	var rf relayFlags
	var ef etcdFlags
	var mf memberFlags
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run a relay: take imports, keep them on disk, forward them upstream",
		Long: `relay takes VictoriaMetrics import requests (POST /api/v1/import/prometheus,
gzip or plain) from agents, vmagent or curl, and Prometheus remote write 1.0
and 2.0 (POST /api/v1/write) from Prometheus, vmagent or Alloy; it checks
every sample, stores each accepted body (remote write as import lines) in a
write-ahead log under --data-dir and answers 204 only once
it is stored; it forwards the log in order and deletes a body only after an
upstream took it. Standalone, it forwards to the --upstream URLs. With --etcd
(or $PROCFLEET_ETCD) it registers under /procfleet/CLUSTER/members/relays/NODE
and takes its upstreams and bandwidth budget from the ring.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clustered := ef.clustered(cmd)
			if clustered {
				if err := ef.validate(); err != nil {
					return err
				}
			}
			cfg, err := rf.load(cmd, clustered)
			if err != nil {
				return err
			}
			if err := relayNode(&cfg, mf, clustered); err != nil {
				return err
			}
			logger := newLogger(cfg.Log)
			r, err := relay.New(cfg, logger)
			if err != nil {
				return usageError{err}
			}
			if !clustered {
				return r.Run(cmd.Context())
			}
			return runClusteredRelay(cmd.Context(), r, cfg, ef, mf, logger)
		},
	}
	rf.register(cmd)
	ef.register(cmd, "")
	mf.register(cmd)
	return cmd
}

// relayNode sets the relay's node name, the instance label of the
// metrics it stores for itself: --node over the file's node, and for a
// clustered relay without either its member's node name (the host name in
// lower case), so that its metrics and its registration name one node.
func relayNode(cfg *config.Relay, mf memberFlags, clustered bool) error {
	if mf.node != "" {
		if err := config.ValidateNodeName(mf.node); err != nil {
			return usageError{fmt.Errorf("--node: %w", err)}
		}
		cfg.Node = mf.node
	}
	if !clustered {
		return nil
	}
	node, err := mf.nodeName(cfg.Node)
	if err != nil {
		return err
	}
	if err := keys.ValidateNode(node); err != nil {
		return usageError{fmt.Errorf("--node: %w", err)}
	}
	cfg.Node = node
	return nil
}

// runClusteredRelay runs r as a member of a cluster: its upstreams and
// budget come from the ring, applied live. The relay listens before the
// member starts, and the member binds its gossip before it registers: a
// relay that cannot take imports, or gossip, fails before it takes a share
// of the ring. Without etcd it starts on the state saved in its data
// directory, or takes imports into its log until settings arrive.
func runClusteredRelay(ctx context.Context, r *relay.Relay, cfg config.Relay, ef etcdFlags, mf memberFlags, logger *slog.Logger) error {
	local := config.DefaultAgent()
	local.Listen = cfg.Listen
	// The relay's own credentials, for the upstreams the cluster names one
	// for; its ship.auth and ship.tls serve the others (see newShipper).
	local.Credentials, local.ConfigFile = cfg.Credentials, cfg.ConfigFile
	m, _, err := mf.member(keys.Relay, cfg.Node, cfg.Listen, local, cfg.WAL.Dir, ef, logger)
	if err != nil {
		return err
	}
	r.AddMetricsSet(m.Metrics())
	rctx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(rctx) }()
	select {
	case <-r.Ready():
	case err := <-errc:
		return relayListenError(cfg.Listen, err)
	}
	m.SetAddress(r.Addr()) // with the port picked for :0
	run := runMember(ctx, m)
	defer run.stop()
	report := time.NewTicker(2 * time.Second)
	defer report.Stop()
	pending := time.NewTicker(pendingLogEvery)
	defer pending.Stop()
	for {
		select {
		case err := <-errc:
			return errors.Join(err, run.stop())
		case err := <-run.done:
			logger.Error("the cluster member stopped; stopping the relay", "err", err)
			stopRelay()
			return errors.Join(err, <-errc)
		case u := <-m.Updates():
			if err := applyRelayUpdate(r, u); err != nil {
				logger.Warn("cannot apply cluster settings", "revision", u.Revision, "err", err)
			} else {
				logger.Info("applied cluster settings", "revision", u.Revision, "upstreams", u.Assignment.Upstreams, "budget", u.Assignment.Budget)
			}
		case <-report.C:
			reportRelay(r, m)
		case <-pending.C:
			if why := m.Pending(); why != nil {
				logger.Warn("no settings from the cluster yet: imports are kept in the log, not forwarded", "why", why)
			}
		}
	}
}

// relayListenError adds the flag to change to the relay's error when it
// could not listen.
func relayListenError(addr string, err error) error {
	if se, ok := errors.AsType[*os.SyscallError](err); ok && strings.Contains(err.Error(), "cannot listen") {
		return fmt.Errorf("cannot listen on %s (--listen): %v; pick another port with --listen", addr, se.Err)
	}
	return err
}

func applyRelayUpdate(r *relay.Relay, u cluster.Update) error {
	if err := r.SetUpstreams(u.Agent.Ship.Upstreams, u.Agent.Ship.Credentials, u.Agent.Ship.Protocols, u.Agent.Ship.Strategy); err != nil {
		return fmt.Errorf("upstreams: %w", err)
	}
	r.Limiter().SetRate(int64(u.Agent.Limit.BytesPerSecond), int64(u.Agent.Limit.Burst))
	return nil
}

func reportRelay(r *relay.Relay, m *cluster.Member) {
	sh := r.Shipper()
	if sh == nil {
		return
	}
	m.ReportShipper(sh.SpoolLen(), endpointHealth(sh.State(), time.Now()), sh.SentBytes())
}
