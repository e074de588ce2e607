package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// TestEtcdDownLongerThanTTL stops the only etcd server for longer than the
// TTL: the session notices the loss and registers again by itself once
// etcd is back, status included.
func TestEtcdDownLongerThanTTL(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := start(t, cli, "web-1")
	info := await(t, s.Session, 5*time.Second, "registered", registered(1))
	if err := s.WriteStatus(testCtx(t), []byte("before")); err != nil {
		t.Fatal(err)
	}
	awaitRenewed(t, s.Session)

	e.Stop()
	stopped := time.Now()
	// The client ends the keep-alive a TTL after etcd's last answer,
	// checking every second; the session declares the lease lost when
	// etcd could not say within half the TTL that it still holds it.
	lost := await(t, s.Session, testTTL+testTTL/2+2*time.Second, "lost", func(i Info) bool { return i.Phase == Lost })
	t.Logf("lost %s after etcd stopped: %v", time.Since(stopped), lost.Err)
	time.Sleep(time.Until(stopped.Add(testTTL + time.Second)))
	e.Restart(t)
	restarted := time.Now()
	back := await(t, s.Session, 10*time.Second, "re-registered", registered(2))
	t.Logf("re-registered %s after etcd restarted", time.Since(restarted))
	if back.Lease == info.Lease {
		t.Fatalf("re-registered with the old lease %x", info.Lease)
	}
	checkRegistered(t, cli, s.Session, back.Lease)
	resp, err := cli.Get(testCtx(t), s.StatusKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" || resp.Kvs[0].Lease != int64(back.Lease) {
		t.Fatalf("status after re-registration: %v, want %q bound to %x", resp.Kvs, "before", back.Lease)
	}
	// The old lease, which etcd restored on restart, is revoked (-1) right
	// after the new registration, which Info shows first, or has expired
	// (0).
	var ttl int64
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := cli.TimeToLive(testCtx(t), info.Lease)
		if err != nil {
			t.Fatal(err)
		}
		if ttl = resp.TTL; ttl <= 0 || time.Now().After(deadline) {
			break
		}
	}
	if ttl > 0 {
		t.Errorf("old lease %x: TTL %d 3s after re-registering; want it gone", info.Lease, ttl)
	}
}

// TestClusterMemberLoss stops each member of a three-member cluster in
// turn, each for longer than the TTL: the quorum stays, and so does the
// registration, on its first lease.
func TestClusterMemberLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartEtcdCluster(t, 3)
	t.Logf("3-member etcd started in %s", c.StartTime)
	cli := c.Client(t)
	s := start(t, cli, "web-1")
	info := await(t, s.Session, 5*time.Second, "registered", registered(1))

	for i := range 3 {
		c.Stop(t, i)
		time.Sleep(testTTL + 500*time.Millisecond)
		now, _ := s.Info()
		if now.Phase != Registered || now.Lease != info.Lease {
			t.Fatalf("member %d down: session %+v, want still registered on lease %x", i, now, info.Lease)
		}
		status := fmt.Sprintf("member %d down", i)
		if err := s.WriteStatus(testCtx(t), []byte(status)); err != nil {
			t.Fatalf("member %d down: WriteStatus: %v", i, err)
		}
		c.Restart(t, i)
	}
	checkRegistered(t, cli, s.Session, info.Lease)
	resp, err := cli.Get(testCtx(t), s.StatusKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "member 2 down" {
		t.Fatalf("status %v", resp.Kvs)
	}
}

// TestClusterAllDown stops all of etcd for longer than the TTL: the
// session registers again by itself when etcd is back.
func TestClusterAllDown(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartEtcdCluster(t, 3)
	cli := c.Client(t)
	s := start(t, cli, "web-1")
	info := await(t, s.Session, 5*time.Second, "registered", registered(1))
	awaitRenewed(t, s.Session)

	c.StopAll()
	stopped := time.Now()
	lost := await(t, s.Session, testTTL+testTTL/2+2*time.Second, "lost", func(i Info) bool { return i.Phase == Lost })
	t.Logf("lost %s after etcd stopped: %v", time.Since(stopped), lost.Err)
	time.Sleep(time.Until(stopped.Add(testTTL + time.Second)))
	c.RestartAll(t)
	restarted := time.Now()
	back := await(t, s.Session, 10*time.Second, "re-registered", registered(2))
	t.Logf("re-registered %s after etcd restarted", time.Since(restarted))
	if back.Lease == info.Lease {
		t.Fatalf("re-registered with the old lease %x", info.Lease)
	}
	checkRegistered(t, cli, s.Session, back.Lease)
}

// TestReregisterSpread stops etcd for longer than the TTL under 20
// sessions: when it is back, their attempts get leases at once, and the
// re-registration spread has them write their keys over the spread, not
// in the same instant.
func TestReregisterSpread(t *testing.T) {
	t.Parallel()
	const n, spread = 20, 1500 * time.Millisecond
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	var ss []started
	for i := range n {
		ss = append(ss, start(t, cli, fmt.Sprintf("web-%02d", i), WithReregisterSpread(spread)))
	}
	for _, s := range ss {
		await(t, s.Session, 5*time.Second, "registered", registered(1))
		awaitRenewed(t, s.Session)
	}
	e.Stop()
	stopped := time.Now()
	for _, s := range ss {
		await(t, s.Session, testTTL+testTTL/2+3*time.Second, "lost", func(i Info) bool { return i.Phase == Lost })
	}
	time.Sleep(time.Until(stopped.Add(testTTL + time.Second)))
	e.Restart(t)
	var first, last time.Time
	for _, s := range ss {
		back := await(t, s.Session, 15*time.Second, "re-registered", registered(2))
		if first.IsZero() || back.Since.Before(first) {
			first = back.Since
		}
		if back.Since.After(last) {
			last = back.Since
		}
		checkRegistered(t, cli, s.Session, back.Lease)
	}
	// 20 waits drawn from 1.5s all fall within 300ms with a probability
	// below 1e-12.
	if got := last.Sub(first); got < 300*time.Millisecond {
		t.Errorf("the %d sessions registered again within %s of each other; want them spread over about %s", n, got, spread)
	}
	t.Logf("re-registrations spread over %s", last.Sub(first))
}
