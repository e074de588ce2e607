package install

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
)

// Kind is the service that install sets up: Agent or Relay.
type Kind string

// The kinds of service install sets up. They share the binary.
const (
	Agent Kind = "agent"
	Relay Kind = "relay"
)

// Config is what Install sets up. The fields are named after the flags of
// "procfleet install KIND" that fill them, and errors name those flags.
type Config struct {
	// Kind is the service to install. No default.
	Kind Kind
	// Etcd is the etcd client URLs, comma-separated, as --etcd takes
	// them: http:// or https:// with a host and a port. Empty (the
	// default) installs a standalone service that pushes to Upstreams.
	Etcd string
	// Cluster is the cluster's name; required with Etcd, refused without.
	Cluster string
	// Node is the node name in the cluster. Empty (the default) has the
	// service take the host name, lower-cased, when it starts.
	Node string
	// Labels are registered with the node: k=v pairs, comma-separated.
	// Default none.
	Labels string
	// Listen is the service's listen address, host:port with a port of
	// 1024 or more: the agent's self HTTP endpoint (empty turns it off) or
	// the relay's import API. Default: the config package's default for
	// the kind (DefaultConfig).
	Listen string
	// Upstreams are the import URLs a standalone service pushes to; at
	// least one without Etcd, none with it.
	Upstreams []string
	// EtcdAuth names the files and user of etcd's TLS and password
	// authentication. Default none.
	EtcdAuth EtcdAuth
	// GossipKeyFile is the host-local file of the gossip's encryption
	// keys (--gossip-key-file), written to the env file as
	// PROCFLEET_GOSSIP_KEY_FILE; with Etcd only. An absolute path that the
	// unit lets the service read and, when installing on this host, a key
	// file the service would take: it exists, holds keys and is not open
	// to every user. Default "": nothing written, so that a drop-in that
	// sets PROCFLEET_GOSSIP_KEY_FILE still applies (the env file would
	// override it).
	GossipKeyFile string
	// Root, when set, is the directory under which the whole install is
	// written, leaving systemd and users alone. Default "": this host.
	Root string
	// DryRun prints what would be done and changes nothing. Default false.
	DryRun bool
}

// EtcdAuth are the files and user of etcd's TLS and password
// authentication; empty fields are not used. Files must be absolute paths
// that the unit lets the service read (not under /home, /root or
// /run/user) and, when installing on this host, exist.
type EtcdAuth struct {
	CA           string // PEM CA bundle that verifies etcd's certificate (--etcd-ca)
	Cert         string // PEM client certificate, with Key (--etcd-cert)
	Key          string // PEM client key, with Cert (--etcd-key)
	User         string // etcd user name, with PasswordFile (--etcd-user)
	PasswordFile string // file that holds User's password (--etcd-password-file)
}

// DefaultConfig returns the Config of a standalone kind with its default
// listen address; Upstreams or Etcd and Cluster remain to be set.
func DefaultConfig(kind Kind) Config {
	return Config{Kind: kind, Listen: defaultListen(kind)}
}

func defaultListen(kind Kind) string {
	if kind == Agent {
		return config.DefaultAgent().Listen
	}
	return config.DefaultRelay().Listen
}

// Validate checks c without looking at the host: Install checks in
// addition that the host name is a node name when Node is empty, that the
// EtcdAuth files exist and that GossipKeyFile is a key file the service
// takes, when it installs on this host. Every error
// names its flag.
func (c Config) Validate() error {
	if err := c.Kind.validate(); err != nil {
		return err
	}
	if err := checkListen(c.Kind, c.Listen); err != nil {
		return err
	}
	if c.Etcd == "" {
		return c.validateStandalone()
	}
	return c.validateClustered()
}

func (k Kind) validate() error {
	if k != Agent && k != Relay {
		return fmt.Errorf("kind %q: want %s or %s", string(k), Agent, Relay)
	}
	return nil
}

// validateStandalone checks the Config of a service without a cluster.
func (c Config) validateStandalone() error {
	a := c.EtcdAuth
	for _, v := range []struct{ flag, value string }{
		{"--cluster", c.Cluster}, {"--node", c.Node}, {"--labels", c.Labels},
		{"--etcd-ca", a.CA}, {"--etcd-cert", a.Cert}, {"--etcd-key", a.Key},
		{"--etcd-user", a.User}, {"--etcd-password-file", a.PasswordFile},
		{"--gossip-key-file", c.GossipKeyFile},
	} {
		if v.value != "" {
			return fmt.Errorf("%s: only with --etcd", v.flag)
		}
	}
	if len(c.Upstreams) == 0 {
		return errors.New("--etcd: want --etcd URLS --cluster NAME for a clustered " + string(c.Kind) + ", or --upstream URL (repeatable) for a standalone one")
	}
	for _, u := range c.Upstreams {
		if err := config.ValidateUpstreamURL(u); err != nil {
			return fmt.Errorf("--upstream: %w", err)
		}
		if p, _ := url.Parse(u); p.User != nil {
			return fmt.Errorf("--upstream %q: holds a user name or password, which %s would show to every local user; install writes no credentials", u, configPath(c.Kind))
		}
	}
	return nil
}

// validateClustered checks the Config of a member of a cluster.
func (c Config) validateClustered() error {
	if len(c.Upstreams) > 0 {
		return fmt.Errorf("--upstream: not with --etcd; a clustered %s takes its upstreams from the cluster", c.Kind)
	}
	if _, err := parseEtcdURLs(c.Etcd); err != nil {
		return err
	}
	if c.Cluster == "" {
		return errors.New("--cluster: required with --etcd")
	}
	if err := keys.ValidateCluster(c.Cluster); err != nil {
		return fmt.Errorf("--cluster: %w", err)
	}
	if c.Node != "" {
		if err := keys.ValidateNode(c.Node); err != nil {
			return fmt.Errorf("--node: %w", err)
		}
	}
	if _, err := config.ParseLabels(c.Labels); err != nil {
		return err
	}
	if c.GossipKeyFile != "" {
		if err := checkServiceFile("--gossip-key-file", c.GossipKeyFile); err != nil {
			return err
		}
	}
	return c.EtcdAuth.validate()
}

// UninstallConfig is what Uninstall removes.
type UninstallConfig struct {
	// Kind is the service to uninstall. No default.
	Kind Kind
	// Root, when set, is the directory under which the install to remove
	// was written; systemd is left alone. Default "": this host.
	Root string
	// Purge removes the kind's data too: the agent's spool or the relay's
	// write-ahead log. Default false.
	Purge bool
	// DryRun prints what would be done and changes nothing. Default false.
	DryRun bool
}

// Validate checks c.
func (c UninstallConfig) Validate() error { return c.Kind.validate() }

// ErrUsage is matched (errors.Is) by the errors of Install and Uninstall
// that come from what they were asked to do, a bad Config or a run by
// another user than root on this host, rather than from the host; the
// command exits 2 on them.
var ErrUsage = errors.New("install: usage error")

// usageError marks err as an ErrUsage and reads as err alone.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{e.err, ErrUsage} }
