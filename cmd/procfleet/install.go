package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/deploy/install"
)

func newInstallCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the agent or the relay as a systemd service on this host",
		Long: `install copies this binary to /usr/local/bin/procfleet and writes
/etc/procfleet/KIND.yaml (the host-local settings), /etc/procfleet/KIND.env
(etcd, cluster, node, labels, gossip key file) and /etc/systemd/system/procfleet-KIND.service,
and creates /var/lib/procfleet. Where systemd runs, it then creates the
procfleet system user if missing and enables and starts the service. Files
are compared first: a run with the same flags changes nothing, and a new
binary or setting restarts the service. --dry-run prints what would be done;
--root DIR writes everything under DIR and leaves systemd and users alone.`,
	}
	cmd.AddCommand(newInstallKindCmd(install.Agent), newInstallKindCmd(install.Relay))
	return cmd
}

func newInstallKindCmd(kind install.Kind) *cobra.Command {
	cfg := install.DefaultConfig(kind)
	cmd := &cobra.Command{
		Use:   string(kind),
		Short: "Install the " + string(kind) + " as " + install.ServiceName(kind) + ".service",
		Long: `Clustered: --etcd URLS --cluster NAME [--node NAME] [--labels k=v,...] [--gossip-key-file FILE].
Standalone: --upstream URL (repeatable). See "procfleet install --help".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return installError(install.Install(cmd.Context(), cfg, install.HostEnv(), cmd.OutOrStdout()))
		},
	}
	registerInstallFlags(cmd, &cfg)
	return cmd
}

// registerInstallFlags binds the flags of install KIND to cfg, whose
// values are the defaults.
func registerInstallFlags(cmd *cobra.Command, cfg *install.Config) {
	fl, kind := cmd.Flags(), string(cfg.Kind)
	fl.StringVar(&cfg.Etcd, "etcd", "", "etcd client `URLS`, comma-separated, such as http://10.0.0.1:2379 (clustered)")
	fl.StringVar(&cfg.Cluster, "cluster", "", "cluster `NAME`, with --etcd")
	fl.StringVar(&cfg.Node, "node", "", "node `NAME` in the cluster (default: the host name, lower-cased, when the service starts)")
	fl.StringVar(&cfg.Labels, "labels", "", "`LABELS` registered with the node, k=v,k2=v2")
	fl.StringArrayVar(&cfg.Upstreams, "upstream", nil, "import `URL` to push to (repeatable), for a standalone "+kind+" without --etcd")
	listenHelp := "import API `ADDR` (listen)"
	if cfg.Kind == install.Agent {
		listenHelp = "self HTTP `ADDR` for /metrics and /healthz (listen); empty turns it off"
	}
	fl.StringVar(&cfg.Listen, "listen", cfg.Listen, listenHelp)
	fl.StringVar(&cfg.EtcdAuth.CA, "etcd-ca", "", "PEM CA bundle `FILE` to verify etcd's certificate")
	fl.StringVar(&cfg.EtcdAuth.Cert, "etcd-cert", "", "PEM client certificate `FILE` for etcd (with --etcd-key)")
	fl.StringVar(&cfg.EtcdAuth.Key, "etcd-key", "", "PEM client key `FILE` for etcd")
	fl.StringVar(&cfg.EtcdAuth.User, "etcd-user", "", "etcd user `NAME` (with --etcd-password-file)")
	fl.StringVar(&cfg.EtcdAuth.PasswordFile, "etcd-password-file", "", "`FILE` holding the etcd user's password")
	fl.StringVar(&cfg.GossipKeyFile, "gossip-key-file", "", "host-local `FILE` with the gossip's encryption keys, readable by the procfleet user and not by every user (written as PROCFLEET_GOSSIP_KEY_FILE; see procfleet agent --help)")
	fl.StringVar(&cfg.Root, "root", "", "write the whole install under `DIR` and leave systemd and users alone")
	fl.BoolVar(&cfg.DryRun, "dry-run", false, "print what would be done and change nothing")
}

func newUninstallCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the agent's or the relay's service and remove what install made",
		Long: `uninstall stops and disables procfleet-KIND.service where systemd runs and
removes its unit, /etc/procfleet/KIND.yaml and KIND.env, and
/usr/local/bin/procfleet unless the other procfleet service is still
installed. /var/lib/procfleet is kept unless --purge, which removes KIND's
data (the agent's spool or the relay's write-ahead log). The procfleet user
is kept.`,
	}
	cmd.AddCommand(newUninstallKindCmd(install.Agent), newUninstallKindCmd(install.Relay))
	return cmd
}

func newUninstallKindCmd(kind install.Kind) *cobra.Command {
	cfg := install.UninstallConfig{Kind: kind}
	cmd := &cobra.Command{
		Use:   string(kind),
		Short: "Uninstall " + install.ServiceName(kind) + ".service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return installError(install.Uninstall(cmd.Context(), cfg, install.HostEnv(), cmd.OutOrStdout()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Root, "root", "", "remove the install under `DIR` and leave systemd alone")
	f.BoolVar(&cfg.Purge, "purge", false, "also remove the "+string(kind)+"'s data under "+install.DataDir)
	f.BoolVar(&cfg.DryRun, "dry-run", false, "print what would be done and change nothing")
	return cmd
}

// installError marks the errors of install and uninstall that are the
// caller's as usage errors (exit code 2).
func installError(err error) error {
	if errors.Is(err, install.ErrUsage) {
		return usageError{err}
	}
	return err
}
