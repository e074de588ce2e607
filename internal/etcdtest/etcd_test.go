package etcdtest

import (
	"context"
	"github.com/procfleet/procfleet/internal/testenv"
	"testing"
	"time"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

func ctx5s(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartEtcd(t *testing.T) {
	t.Parallel()
	e := StartEtcd(t)
	t.Logf("single-node etcd started in %s", e.StartTime)
	cli := e.Client(t)
	if _, err := cli.Put(ctx5s(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	e.Stop() // no-op
	begin := time.Now()
	e.Restart(t)
	t.Logf("restarted in %s", time.Since(begin))
	resp, err := cli.Get(ctx5s(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}

func TestStartEtcdCluster(t *testing.T) {
	t.Parallel()
	c := StartEtcdCluster(t, 3)
	t.Logf("3-member etcd started in %s", c.StartTime)
	cli := c.Client(t)
	if _, err := cli.Put(ctx5s(t), "k", "1"); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	c.Stop(t, 1)
	t.Logf("one member stopped in %s", time.Since(begin))
	if _, err := cli.Put(ctx5s(t), "k", "2"); err != nil { // quorum of two
		t.Fatalf("write with one member down: %v", err)
	}
	begin = time.Now()
	c.Restart(t, 1)
	t.Logf("one member restarted in %s", time.Since(begin))
	// The restarted member catches up: read from it alone.
	one := NewEtcdClient(t, c.Endpoints[1:2])
	resp, err := one.Get(ctx5s(t), "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("restarted member reads %v, %v", resp, err)
	}

	begin = time.Now()
	c.StopAll()
	t.Logf("all members stopped in %s", time.Since(begin))
	begin = time.Now()
	c.RestartAll(t)
	t.Logf("all members restarted in %s", time.Since(begin))
	resp, err = cli.Get(ctx5s(t), "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("after full restart: %v, %v", resp, err)
	}
}
