package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
)

// installEnv is what install and uninstall take from the host they run
// on; tests replace every part.
type installEnv struct {
	// executable returns the path of the binary to install.
	executable func() (string, error)
	// hostname returns the host's name, the default node name.
	hostname func() (string, error)
	// systemdRunning reports whether systemd manages this host.
	systemdRunning func() bool
	// euid returns the effective user ID.
	euid func() int
	// sys runs useradd and systemctl.
	sys system
}

// hostInstallEnv is the installEnv of the host procfleet runs on.
func hostInstallEnv() installEnv {
	return installEnv{
		executable: func() (string, error) {
			p, err := os.Executable()
			if err != nil {
				return "", err
			}
			return filepath.EvalSymlinks(p)
		},
		hostname: os.Hostname,
		systemdRunning: func() bool {
			// What sd_booted(3) checks.
			fi, err := os.Stat("/run/systemd/system")
			return err == nil && fi.IsDir()
		},
		euid: os.Geteuid,
		sys:  execSystem{},
	}
}

func newInstallCmd() *cobra.Command { return newInstallCmdEnv(hostInstallEnv()) }

func newInstallCmdEnv(env installEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the agent or the relay as a systemd service on this host",
		Long: `install copies this binary to /usr/local/bin/procfleet and writes
/etc/procfleet/KIND.yaml (the host-local settings), /etc/procfleet/KIND.env
(etcd, cluster, node, labels) and /etc/systemd/system/procfleet-KIND.service,
and creates /var/lib/procfleet. Where systemd runs, it then creates the
procfleet system user if missing and enables and starts the service. Files
are compared first: a run with the same flags changes nothing, and a new
binary or setting restarts the service. --dry-run prints what would be done;
--root DIR writes everything under DIR and leaves systemd and users alone.`,
	}
	cmd.AddCommand(newInstallKindCmd(env, kindAgent), newInstallKindCmd(env, kindRelay))
	return cmd
}

func newInstallKindCmd(env installEnv, kind string) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   kind,
		Short: "Install the " + kind + " as " + serviceName(kind) + ".service",
		Long: `Clustered: --etcd URLS --cluster NAME [--node NAME] [--labels k=v,...].
Standalone: --upstream URL (repeatable). See "procfleet install --help".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.spec(kind, env)
			if err != nil {
				return err
			}
			in, err := newInstaller(env, f.root, f.dryRun, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			exe, err := env.executable()
			if err != nil {
				return fmt.Errorf("cannot find the running binary to install: %w", err)
			}
			return in.install(cmd.Context(), spec, exe)
		},
	}
	f.register(cmd, kind)
	return cmd
}

// installFlags are the flags of install agent and install relay.
type installFlags struct {
	etcd      string
	cluster   string
	node      string
	labels    string
	listen    string
	upstreams []string
	auth      etcdAuth
	root      string
	dryRun    bool
}

func defaultListen(kind string) string {
	if kind == kindAgent {
		return config.DefaultAgent().Listen
	}
	return config.DefaultRelay().Listen
}

func (f *installFlags) register(cmd *cobra.Command, kind string) {
	fl := cmd.Flags()
	fl.StringVar(&f.etcd, "etcd", "", "etcd client `URLS`, comma-separated, such as http://10.0.0.1:2379 (clustered)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster `NAME`, with --etcd")
	fl.StringVar(&f.node, "node", "", "node `NAME` in the cluster (default: the host name, lower-cased, when the service starts)")
	fl.StringVar(&f.labels, "labels", "", "`LABELS` registered with the node, k=v,k2=v2")
	fl.StringArrayVar(&f.upstreams, "upstream", nil, "import `URL` to push to (repeatable), for a standalone "+kind+" without --etcd")
	listenHelp := "import API `ADDR` (listen)"
	if kind == kindAgent {
		listenHelp = "self HTTP `ADDR` for /metrics, /healthz, /debug/pprof (listen); empty turns it off"
	}
	fl.StringVar(&f.listen, "listen", defaultListen(kind), listenHelp)
	fl.StringVar(&f.auth.ca, "etcd-ca", "", "PEM CA bundle `FILE` to verify etcd's certificate")
	fl.StringVar(&f.auth.cert, "etcd-cert", "", "PEM client certificate `FILE` for etcd (with --etcd-key)")
	fl.StringVar(&f.auth.key, "etcd-key", "", "PEM client key `FILE` for etcd")
	fl.StringVar(&f.auth.user, "etcd-user", "", "etcd user `NAME` (with --etcd-password-file)")
	fl.StringVar(&f.auth.passwordFile, "etcd-password-file", "", "`FILE` holding the etcd user's password")
	fl.StringVar(&f.root, "root", "", "write the whole install under `DIR` and leave systemd and users alone")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be done and change nothing")
}

// spec checks the flags and returns what to install. Every error names
// its flag; nothing is written before it returns.
func (f installFlags) spec(kind string, env installEnv) (installSpec, error) {
	s := installSpec{kind: kind, listen: f.listen, etcdAuth: f.auth}
	if err := checkListen(kind, f.listen); err != nil {
		return s, usageError{err}
	}
	var err error
	if f.etcd == "" {
		err = f.standalone(&s)
	} else {
		err = f.clustered(&s, env)
	}
	if err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// standalone fills s for a service without a cluster.
func (f installFlags) standalone(s *installSpec) error {
	for _, v := range []struct{ flag, value string }{
		{"--cluster", f.cluster}, {"--node", f.node}, {"--labels", f.labels},
		{"--etcd-ca", f.auth.ca}, {"--etcd-cert", f.auth.cert}, {"--etcd-key", f.auth.key},
		{"--etcd-user", f.auth.user}, {"--etcd-password-file", f.auth.passwordFile},
	} {
		if v.value != "" {
			return fmt.Errorf("%s: only with --etcd", v.flag)
		}
	}
	if len(f.upstreams) == 0 {
		return errors.New("--etcd: want --etcd URLS --cluster NAME for a clustered " + s.kind + ", or --upstream URL (repeatable) for a standalone one")
	}
	for _, u := range f.upstreams {
		if err := config.ValidateUpstreamURL(u); err != nil {
			return fmt.Errorf("--upstream: %w", err)
		}
		if p, _ := url.Parse(u); p.User != nil {
			return fmt.Errorf("--upstream %q: holds a user name or password, which %s would show to every local user; install writes no credentials", u, configPath(s.kind))
		}
	}
	s.upstreams = f.upstreams
	return nil
}

// clustered fills s for a member of a cluster.
func (f installFlags) clustered(s *installSpec, env installEnv) error {
	if len(f.upstreams) > 0 {
		return fmt.Errorf("--upstream: not with --etcd; a clustered %s takes its upstreams from the cluster", s.kind)
	}
	var err error
	if s.etcd, err = parseEtcdURLs(f.etcd); err != nil {
		return err
	}
	if f.cluster == "" {
		return errors.New("--cluster: required with --etcd")
	}
	if err := keys.ValidateCluster(f.cluster); err != nil {
		return fmt.Errorf("--cluster: %w", err)
	}
	s.cluster = f.cluster
	if err := checkNode(f.node, f.root, env); err != nil {
		return err
	}
	s.node = f.node
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	s.labels = joinLabels(labels)
	return f.auth.check(f.root)
}

// checkNode checks --node or, when it is not given and the install is for
// this host, the host name the service will take for it.
func checkNode(node, root string, env installEnv) error {
	if node != "" {
		if err := keys.ValidateNode(node); err != nil {
			return fmt.Errorf("--node: %w", err)
		}
		return nil
	}
	if root != "" {
		return nil // the target's host name is not known here
	}
	h, err := env.hostname()
	if err != nil {
		return fmt.Errorf("--node: not given, and the host name is unknown: %w", err)
	}
	if err := keys.ValidateNode(strings.ToLower(h)); err != nil {
		return fmt.Errorf("--node: not given, and the host name %q is no node name (%w); give --node", h, err)
	}
	return nil
}

func joinLabels(labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for i, k := range ks {
		ks[i] = k + "=" + labels[k]
	}
	return strings.Join(ks, ",")
}

// parseEtcdURLs checks the --etcd value: http or https URLs with a host
// and a port, and nothing else.
func parseEtcdURLs(s string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(s, ",") {
		u := strings.TrimSpace(raw)
		p, err := url.Parse(u)
		ok := err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Hostname() != "" &&
			p.Opaque == "" && (p.Path == "" || p.Path == "/") && p.RawQuery == "" && p.Fragment == ""
		if ok {
			port, err := strconv.Atoi(p.Port())
			ok = err == nil && port > 0 && port < 65536
		}
		if !ok {
			return nil, fmt.Errorf("--etcd %q: %q is not accepted; want http:// or https:// URLs with a host and a port, comma-separated, such as http://10.0.0.1:2379,http://10.0.0.2:2379", s, u)
		}
		if p.User != nil {
			return nil, fmt.Errorf("--etcd %q: %q holds a user name or password, which the env file would show to every local user; give them with --etcd-user and --etcd-password-file", s, u)
		}
		out = append(out, u)
	}
	return out, nil
}

// checkListen checks --listen: the unit grants no CAP_NET_BIND_SERVICE.
func checkListen(kind, s string) error {
	if s == "" && kind == kindAgent {
		return nil
	}
	_, p, err := net.SplitHostPort(s)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return fmt.Errorf("--listen %q: want host:port such as %s", s, defaultListen(kind))
	}
	if port < 1024 {
		return fmt.Errorf("--listen %q: ports below 1024 need CAP_NET_BIND_SERVICE, which %s.service does not grant; want 1024 to 65535", s, serviceName(kind))
	}
	return nil
}

// check checks the etcd auth flags against what the unit lets the service
// read.
func (a etcdAuth) check(root string) error {
	if (a.cert == "") != (a.key == "") {
		return errors.New("--etcd-cert, --etcd-key: go together; give both or neither")
	}
	if (a.user == "") != (a.passwordFile == "") {
		return errors.New("--etcd-user, --etcd-password-file: go together; give both or neither")
	}
	if strings.ContainsFunc(a.user, unicode.IsControl) {
		return fmt.Errorf("--etcd-user %q: control characters are not accepted", a.user)
	}
	for _, f := range []struct{ flag, path string }{
		{"--etcd-ca", a.ca}, {"--etcd-cert", a.cert}, {"--etcd-key", a.key}, {"--etcd-password-file", a.passwordFile},
	} {
		if f.path == "" {
			continue
		}
		if !filepath.IsAbs(f.path) || strings.ContainsFunc(f.path, unicode.IsControl) {
			return fmt.Errorf("%s %q: want an absolute path", f.flag, f.path)
		}
		for _, hidden := range []string{"/home", "/root", "/run/user"} {
			if f.path == hidden || strings.HasPrefix(f.path, hidden+"/") {
				return fmt.Errorf("%s %q: the unit's ProtectHome=yes hides %s from the service; put the file under /etc/procfleet", f.flag, f.path, hidden)
			}
		}
		if root == "" {
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("%s: %w", f.flag, err)
			}
		}
	}
	return nil
}
