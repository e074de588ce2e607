package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/config"
)

// agentFlags are the agent flags that override the config file.
type agentFlags struct {
	cfgFile   string
	upstreams []string
	rw        []string
	procRoot  string
	sysRoot   string
	listen    string
	hostname  string
	logLevel  string
	spoolDir  string
	pprof     string
	pprofAny  bool
}

func (af *agentFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&af.cfgFile, "config", "", "agent config file (YAML; see deploy/agent.example.yaml)")
	f.StringArrayVar(&af.upstreams, "upstream", nil, "import URL to push to (repeatable); replaces ship.upstreams")
	f.StringArrayVar(&af.rw, "remote-write", nil, "Prometheus remote-write `URL` to push to (repeatable), such as http://prometheus:9090/api/v1/write; with --upstream, ship.upstreams are both lists (ship.protocols: remote_write, version 1 unless the file says 2)")
	f.StringVar(&af.procRoot, "procfs-root", "/proc", "procfs mount point (procfs_root)")
	f.StringVar(&af.sysRoot, "sysfs-root", "/sys", "sysfs mount point (sysfs_root)")
	f.StringVar(&af.listen, "listen", "127.0.0.1:9477", "self HTTP address for /metrics and /healthz (listen)")
	f.StringVar(&af.hostname, "hostname", "", "instance label (hostname; default: the host name)")
	f.StringVar(&af.logLevel, "log-level", "info", "debug, info, warn or error (log.level)")
	f.StringVar(&af.spoolDir, "spool-dir", "", "directory for batches no upstream takes, replayed later; empty keeps them in memory only (spool.dir)")
	f.StringVar(&af.pprof, "pprof-listen", "", "`ADDR` of a separate HTTP server for /debug/pprof/, loopback only unless --pprof-allow-remote; empty turns it off (debug.pprof_listen)")
	f.BoolVar(&af.pprofAny, "pprof-allow-remote", false, "accept a --pprof-listen address that is not loopback; profiles show the agent's memory, unauthenticated (debug.pprof_allow_remote)")
}

// load reads the config file, if any, and applies the flags that were set.
func (af *agentFlags) load(cmd *cobra.Command) (config.Agent, error) {
	cfg := config.DefaultAgent()
	if af.cfgFile != "" {
		var err error
		if cfg, err = config.LoadAgentFile(af.cfgFile); err != nil {
			return cfg, usageError{err}
		}
	}
	f := cmd.Flags()
	if f.Changed("upstream") || f.Changed("remote-write") {
		cfg.Ship.Upstreams = remoteWriteUpstreams(&cfg.Ship, af.upstreams, af.rw)
	}
	if f.Changed("procfs-root") {
		cfg.ProcfsRoot = af.procRoot
	}
	if f.Changed("sysfs-root") {
		cfg.SysfsRoot = af.sysRoot
	}
	if f.Changed("listen") {
		cfg.Listen = af.listen
	}
	if f.Changed("hostname") {
		cfg.Hostname = af.hostname
	}
	if f.Changed("log-level") {
		cfg.Log.Level = af.logLevel
	}
	if f.Changed("spool-dir") {
		cfg.Spool.Dir = af.spoolDir
	}
	if f.Changed("pprof-listen") {
		cfg.Debug.PprofListen = af.pprof
	}
	if f.Changed("pprof-allow-remote") {
		cfg.Debug.PprofAllowRemote = af.pprofAny
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	if err := checkCredentials(cfg.ConfigFile, cfg.Credentials); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// remoteWriteUpstreams returns the upstream list of --upstream and
// --remote-write, and marks the remote-write URLs as such in s.Protocols,
// keeping a remote_write_version that the file gives for one.
func remoteWriteUpstreams(s *config.Ship, imports, rw []string) []string {
	out := append(slices.Clone(imports), rw...)
	if len(rw) == 0 {
		return out
	}
	protos := maps.Clone(s.Protocols)
	if protos == nil {
		protos = make(map[string]config.UpstreamProtocol, len(rw))
	}
	for _, u := range imports {
		delete(protos, u) // --upstream is an import URL
	}
	for _, u := range rw {
		if p := protos[u]; p.Protocol != config.ProtocolRemoteWrite {
			protos[u] = config.UpstreamProtocol{Protocol: config.ProtocolRemoteWrite}
		}
	}
	s.Protocols = protos
	return out
}

// checkCredentials reads every credential of the host's file once, so that
// a missing or unreadable file stops the start, naming it, rather than
// making the upstreams that use it unusable later.
func checkCredentials(file string, creds map[string]config.Credential) error {
	for _, name := range slices.Sorted(maps.Keys(creds)) {
		if err := ship.CheckCredential(name, creds[name]); err != nil {
			return usageError{fmt.Errorf("%s: %w", file, err)}
		}
	}
	return nil
}

// newAgentCmd returns the agent command, which leaves its run to later
// (see execute) unless later is nil.
func newAgentCmd(later *deferredRun) *cobra.Command {
	var af agentFlags
	var ef etcdFlags
	var mf memberFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: scan /proc and push to VictoriaMetrics",
		Long: `agent scans /proc and pushes to VictoriaMetrics. Standalone, it pushes to
the --upstream URLs. With --etcd (or $PROCFLEET_ETCD) it joins a cluster:
it registers under /procfleet/CLUSTER/members/agents/NODE and takes its
upstreams, bandwidth budget and settings from the cluster config, applied
live.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clustered := ef.clustered(cmd)
			gcPercent, gcFromEnv := setAgentGCPercent()
			if clustered {
				if err := ef.validate(); err != nil {
					return err
				}
			}
			cfg, err := af.load(cmd)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.Log)
			heapProfile := setHeapProfile(cfg.Debug.PprofListen)
			logger.Debug("go runtime", "gc_percent", gcPercent, "from_GOGC", gcFromEnv, "heap_profile", heapProfile)
			// The pages of the binary that only the start touched leave
			// the agent's resident memory (docs/performance.md).
			go releaseStartPagesAfter(cmd.Context(), startPagesDelay, randomReadFor, logger)
			if !gcFromEnv {
				go tuneGCPercent(cmd.Context(), 10*time.Second, logger)
			}
			agentProcsPolicy = newProcsPolicy(logger)
			ctx := cmd.Context()
			if clustered {
				return deferOrRun(later, func() error { return runClustered(ctx, cfg, ef, mf, logger) })
			}
			a, err := agent.New(cfg, logger)
			if err != nil {
				return usageError{err}
			}
			return deferOrRun(later, func() error { return a.Run(ctx) })
		},
	}
	af.register(cmd)
	ef.register(cmd, "")
	mf.register(cmd)
	return cmd
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
