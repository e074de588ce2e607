package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/procfleet/procfleet/cluster/configstore"
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

// client connects to etcd as the flags say.
func (ef *etcdFlags) client() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   strings.Split(ef.endpoints, ","),
		DialTimeout: ef.dialTimeout,
		Logger:      zap.NewNop(),
	}
	if (ef.certFile == "") != (ef.keyFile == "") {
		return nil, usageError{errors.New("--etcd-cert and --etcd-key go together")}
	}
	if ef.caFile != "" || ef.certFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ef.caFile != "" {
			pem, err := os.ReadFile(ef.caFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read --etcd-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--etcd-ca %s: no PEM certificate in it", ef.caFile)
			}
		}
		if ef.certFile != "" {
			cert, err := tls.LoadX509KeyPair(ef.certFile, ef.keyFile)
			if err != nil {
				return nil, fmt.Errorf("cannot load --etcd-cert/--etcd-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	if ef.username != "" {
		if ef.passwordFile == "" {
			return nil, usageError{errors.New("--etcd-user needs --etcd-password-file")}
		}
		pw, err := os.ReadFile(ef.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --etcd-password-file: %w", err)
		}
		cfg.Username, cfg.Password = ef.username, strings.TrimRight(string(pw), "\r\n")
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to etcd at %s: %w", ef.endpoints, err)
	}
	return cli, nil
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

// withTimeout bounds one etcd round trip of a command.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
