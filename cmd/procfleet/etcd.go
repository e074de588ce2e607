package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/config"
)

// etcdFlags are the flags every command that talks to etcd takes.
type etcdFlags struct {
	endpoints    string
	cluster      string
	caFile       string
	certFile     string
	keyFile      string
	username     string
	passwordFile string
	dialTimeout  time.Duration
	envErr       error // an environment variable that could not be parsed
}

// localEtcd is --etcd's default for the commands that administer a
// cluster (config, status, cluster bootstrap): an etcd on this host.
const localEtcd = "http://127.0.0.1:2379"

// register adds the etcd flags to cmd. defaultEndpoints is --etcd's
// default when $PROCFLEET_ETCD is unset: localEtcd for the commands that
// administer a cluster, empty for the agent and the relay, which run
// standalone without --etcd. --cluster has no default: a mistyped or
// forgotten name must not read or write another cluster.
func (ef *etcdFlags) register(cmd *cobra.Command, defaultEndpoints string) {
	f := cmd.Flags()
	etcdHelp := "etcd client URLs, comma-separated ($PROCFLEET_ETCD)"
	if defaultEndpoints == "" {
		etcdHelp = "etcd client URLs, comma-separated ($PROCFLEET_ETCD); set, the process joins the cluster --cluster names"
	}
	f.StringVar(&ef.endpoints, "etcd", envOr("PROCFLEET_ETCD", defaultEndpoints), etcdHelp)
	f.StringVar(&ef.cluster, "cluster", os.Getenv("PROCFLEET_CLUSTER"), "cluster name, required: keys live under /procfleet/NAME/ ($PROCFLEET_CLUSTER)")
	f.StringVar(&ef.caFile, "etcd-ca", os.Getenv("PROCFLEET_ETCD_CA"), "PEM CA bundle to verify etcd's certificate ($PROCFLEET_ETCD_CA)")
	f.StringVar(&ef.certFile, "etcd-cert", os.Getenv("PROCFLEET_ETCD_CERT"), "PEM client certificate for etcd, with --etcd-key ($PROCFLEET_ETCD_CERT)")
	f.StringVar(&ef.keyFile, "etcd-key", os.Getenv("PROCFLEET_ETCD_KEY"), "PEM client key for etcd ($PROCFLEET_ETCD_KEY)")
	f.StringVar(&ef.username, "etcd-user", os.Getenv("PROCFLEET_ETCD_USER"), "etcd user name, with --etcd-password-file ($PROCFLEET_ETCD_USER)")
	f.StringVar(&ef.passwordFile, "etcd-password-file", os.Getenv("PROCFLEET_ETCD_PASSWORD_FILE"), "file holding the etcd user's password ($PROCFLEET_ETCD_PASSWORD_FILE)")
	f.DurationVar(&ef.dialTimeout, "etcd-dial-timeout", envDuration("PROCFLEET_ETCD_DIAL_TIMEOUT", 5*time.Second), "how long to wait for etcd ($PROCFLEET_ETCD_DIAL_TIMEOUT)")
	if v := os.Getenv("PROCFLEET_ETCD_DIAL_TIMEOUT"); v != "" {
		if _, err := time.ParseDuration(v); err != nil {
			ef.envErr = fmt.Errorf("$PROCFLEET_ETCD_DIAL_TIMEOUT %q is not accepted; want a duration such as 5s", v)
		}
	}
}

// clustered reports whether the agent or relay joins a cluster: --etcd
// or $PROCFLEET_ETCD is set.
func (ef *etcdFlags) clustered(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("etcd") || os.Getenv("PROCFLEET_ETCD") != ""
}

// validate checks what every command that talks to etcd needs: endpoints
// and a cluster name.
func (ef *etcdFlags) validate() error {
	if ef.envErr != nil {
		return usageError{ef.envErr}
	}
	if strings.TrimSpace(ef.endpoints) == "" {
		return usageError{errors.New("--etcd is empty; want etcd client URLs such as http://127.0.0.1:2379 (or $PROCFLEET_ETCD)")}
	}
	if ef.cluster == "" {
		return usageError{errors.New("--cluster is required (or $PROCFLEET_CLUSTER): the name of the cluster, whose keys live under /procfleet/NAME/")}
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// envDuration is $key as a duration, or def when it is unset or not a
// duration (validate reports the latter).
func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

// client connects to etcd as the flags say and checks, within the dial
// timeout, that some endpoint answers, so that a command against a dead
// etcd fails in seconds with a message that says so.
func (ef *etcdFlags) client() (*clientv3.Client, error) {
	if err := ef.validate(); err != nil {
		return nil, err
	}
	cfg := ef.config()
	cli, err := etcdclient.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ef.dialTimeout)
	defer cancel()
	var lastErr error
	for _, ep := range cfg.Endpoints {
		if _, lastErr = cli.Status(ctx, ep); lastErr == nil {
			return cli, nil
		}
	}
	cli.Close()
	return nil, fmt.Errorf("cannot reach etcd at %s within %s (--etcd, $PROCFLEET_ETCD): %w", ef.endpoints, ef.dialTimeout, lastErr)
}

// config returns the etcd client settings of the flags.
func (ef *etcdFlags) config() etcdclient.Config {
	return etcdclient.Config{
		Endpoints:    strings.Split(ef.endpoints, ","),
		CAFile:       ef.caFile,
		CertFile:     ef.certFile,
		KeyFile:      ef.keyFile,
		Username:     ef.username,
		PasswordFile: ef.passwordFile,
		DialTimeout:  ef.dialTimeout,
	}
}

// store opens the cluster's config store; the caller closes the client.
func (ef *etcdFlags) store() (*configstore.Store, *clientv3.Client, error) {
	cli, err := ef.client()
	if err != nil {
		return nil, nil, err
	}
	st, err := configstore.New(cli, ef.cluster, validateCluster, configstore.WithAuthor(ef.author()))
	if err != nil {
		cli.Close()
		return nil, nil, usageError{err}
	}
	return st, cli, nil
}

// validateCluster is the check every write of the cluster config passes.
func validateCluster(data []byte) error {
	_, err := config.ParseCluster(data)
	return err
}

// withStore opens the cluster's config store and runs f with a context
// bounded by etcdTimeout, then closes the client.
func (ef *etcdFlags) withStore(cmd *cobra.Command, f func(ctx context.Context, st *configstore.Store, cli *clientv3.Client) error) error {
	st, cli, err := ef.store()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := withTimeout(cmd.Context(), etcdTimeout)
	defer cancel()
	return f(ctx, st, cli)
}

// withTimeout bounds one etcd round trip of a command.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
