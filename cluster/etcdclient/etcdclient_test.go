package etcdclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(c Config, want string) {
		t.Helper()
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%+v) = %v; want an error with %q", c, err, want)
		}
	}
	f(Config{}, "etcd endpoints: empty")
	f(Config{Endpoints: []string{"http://x"}, CertFile: "c"}, "certificate and key go together")
	f(Config{Endpoints: []string{"http://x"}, Username: "u"}, "needs a password file")
	f(Config{Endpoints: []string{"http://x"}, Username: "u", PasswordFile: filepath.Join(dir, "none")}, "cannot read etcd password file")
	f(Config{Endpoints: []string{"https://x"}, CAFile: notPEM}, "no PEM certificate")
}

func TestConnects(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli, err := New(Config{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/procfleet/t/x", "1"); err != nil {
		t.Fatalf("put through the client: %v", err)
	}
}

// TestWatchStream shows that watches opened with WatchStream under
// different names get gRPC watch streams of their own (counted by etcd
// itself), and that watches under one name share one.
func TestWatchStream(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli, err := New(Config{Endpoints: e.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := watchStreams(t)
	// A watch is opened, and its stream counted by etcd, by the time its
	// first response arrives: ask for one with a progress notification.
	open := func(wctx context.Context, key string) {
		t.Helper()
		wch := cli.Watch(wctx, key, clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
		select {
		case <-wch:
		case <-time.After(10 * time.Second):
			t.Fatalf("watch of %s not created within 10s", key)
		}
	}
	open(clientv3.WithRequireLeader(ctx), "members/")
	open(WatchStream(ctx, "config"), "config")
	open(WatchStream(ctx, "config"), "config2")
	open(WatchStream(ctx, "targets"), "targets/")
	if got := watchStreams(t) - base; got != 3 {
		t.Fatalf("etcd counts %v new watch streams; want 3 (members, config, targets)", got)
	}
}

// watchStreams is etcd's count of open watch streams in this process.
func watchStreams(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "etcd_debugging_mvcc_watch_stream_total" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("etcd_debugging_mvcc_watch_stream_total not found among the process's metrics")
	return 0
}
