package main

import (
	"context"
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
}

func (ef *etcdFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&ef.endpoints, "etcd", envOr("PROCFLEET_ETCD", "http://127.0.0.1:2379"), "etcd client URLs, comma-separated ($PROCFLEET_ETCD)")
	f.StringVar(&ef.cluster, "cluster", envOr("PROCFLEET_CLUSTER", "default"), "cluster name: keys live under /procfleet/NAME/ ($PROCFLEET_CLUSTER)")
	f.StringVar(&ef.caFile, "etcd-ca", "", "PEM CA bundle to verify etcd's certificate")
	f.StringVar(&ef.certFile, "etcd-cert", "", "PEM client certificate for etcd (with --etcd-key)")
	f.StringVar(&ef.keyFile, "etcd-key", "", "PEM client key for etcd")
	f.StringVar(&ef.username, "etcd-user", "", "etcd user name (with --etcd-password-file)")
	f.StringVar(&ef.passwordFile, "etcd-password-file", "", "file holding the etcd user's password")
	f.DurationVar(&ef.dialTimeout, "etcd-dial-timeout", 5*time.Second, "how long to wait for etcd")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// client connects to etcd as the flags say and checks, within the dial
// timeout, that some endpoint answers, so that a command against a dead
// etcd fails in seconds with a message that says so.
func (ef *etcdFlags) client() (*clientv3.Client, error) {
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
	st, err := configstore.New(cli, ef.cluster, validateCluster)
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
