// Package etcdclient connects procfleet's commands, agents and relays to
// etcd: endpoints, TLS, user and password, and reconnect settings fit for
// members that must find etcd again quickly after an outage.
package etcdclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/metadata"
)

// Config says how to reach etcd.
type Config struct {
	// Endpoints are etcd client URLs. Required.
	Endpoints []string
	// CAFile is a PEM bundle to verify etcd's certificate. Default: the
	// system roots when an endpoint is https.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile, KeyFile string
	// Username and PasswordFile authenticate with etcd's user/password auth.
	Username, PasswordFile string
	// DialTimeout bounds the first connection. Default 5s.
	DialTimeout time.Duration
	// KeepAliveTimeout is how long a keep-alive ping may wait for its
	// answer before the connection is taken for dead and closed. Default
	// KeepAliveTimeout (5s). The fleet simulator, whose thousands of
	// members share two cores, gives more.
	KeepAliveTimeout time.Duration
}

// Keep-alive settings of the connections to etcd (see New).
const (
	KeepAliveTime    = 10 * time.Second
	KeepAliveTimeout = 5 * time.Second
)

// ConnectParams caps gRPC's reconnect backoff at 1s. gRPC's default grows
// to 120s, so after an outage of a minute a member would wait about as long
// again before it tries the etcd that came back.
//
// The time a connection attempt may take (TCP, TLS, HTTP/2's prefaces) is
// gRPC's default of 20s, not the backoff's 1s: an etcd that thousands of
// members reconnect to at once (after an outage, or a node's restart), or
// a member whose host is busy, can take more than a second to finish a
// handshake, and an attempt abandoned after 1s is tried again, and again,
// each one a handshake more for etcd to do. With 1s, 1,000 simulated
// members on two cores made 45,000 attempts in four minutes, nearly all
// given up on, and hundreds could not register (docs/performance.md,
// "Connection attempts given time"). An endpoint that refuses fails at
// once either way; one that does not answer is given up after 20s while
// the other endpoints' connections serve.
var ConnectParams = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   time.Second,
	},
	MinConnectTimeout: 20 * time.Second,
}

// Validate checks c.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 || c.Endpoints[0] == "" {
		return errors.New("etcd endpoints: empty; want URLs such as http://127.0.0.1:2379")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("etcd client certificate and key go together; set both or neither")
	}
	if c.Username != "" && c.PasswordFile == "" {
		return errors.New("etcd user name needs a password file")
	}
	return nil
}

// New connects to etcd. The client is the caller's to close.
func New(c Config) (*clientv3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		// Keep-alive pings find a connection that died without a word (a
		// network cut, a host whose address changed meanwhile): without
		// them gRPC goes on writing into it until TCP gives up, about 15
		// minutes, and the member cannot register again before. 10s is
		// above etcd's default --grpc-keepalive-min-time of 5s, which
		// answers more frequent pings with GOAWAY.
		DialKeepAliveTime:    KeepAliveTime,
		DialKeepAliveTimeout: cmp.Or(c.KeepAliveTimeout, KeepAliveTimeout),
		Logger:               zap.NewNop(),
		// The codec writes and reads the messages a member exchanges while it
		// runs without protobuf's reflection (see codec).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(ConnectParams), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec{}))},
	}
	tc, err := c.tls()
	if err != nil {
		return nil, err
	}
	cfg.TLS = tc
	if c.Username != "" {
		pw, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read etcd password file: %w", err)
		}
		cfg.Username, cfg.Password = c.Username, strings.TrimRight(string(pw), "\r\n")
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to etcd at %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}

func (c Config) tls() (*tls.Config, error) {
	https := false
	for _, e := range c.Endpoints {
		https = https || strings.HasPrefix(e, "https://")
	}
	if c.CAFile == "" && c.CertFile == "" && !https {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read etcd CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA file %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// WatchStream returns a context for clientv3's Watch that gives the watches
// opened with it a gRPC watch stream of their own, named name, and asks for
// a leader ("require leader": a member cut off from its cluster drops the
// watch, and the caller watches again through another).
//
// clientv3 puts every watch whose context carries the same outgoing
// metadata on one stream, and etcd sends a stream's events in order: a
// config change written while thousands of membership events are queued
// for the member watch (a rolling restart of a large fleet) waits behind
// them. The config watch takes a stream of its own, so that a busy member
// watch does not delay it; the watches whose keys change as rarely share
// it (the published target sets, the discovery election), and the members'
// weight lists, which change by the thousand during handovers, take
// another. Each stream costs the client goroutines and buffers, and etcd
// a stream per member.
func WatchStream(ctx context.Context, name string) context.Context {
	return clientv3.WithRequireLeader(metadata.AppendToOutgoingContext(ctx, watchStreamKey, name))
}

// watchStreamKey is the metadata key that names a watch stream; etcd
// ignores it.
const watchStreamKey = "procfleet-watch-stream"
