package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// testTTL is short so that outages longer than the TTL stay short.
const testTTL = 2 * time.Second

var testMember = Member{
	Address: "127.0.0.1:7946",
	HTTP:    "127.0.0.1:9477",
	Version: "v0.0.0-test",
	Labels:  map[string]string{"rack": "r1"},
	Kind:    keys.Agent,
}

// started is a running session and what the test needs to stop it.
type started struct {
	*Session
	stop func() // cancels Run and waits for it to return
}

func newSession(t *testing.T, cli *clientv3.Client, node string, opts ...Option) *Session {
	t.Helper()
	opts = append([]Option{WithTTL(testTTL), WithRetry(50*time.Millisecond, 500*time.Millisecond)}, opts...)
	s, err := New(cli, "test", node, testMember, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, cli *clientv3.Client, node string, opts ...Option) started {
	t.Helper()
	return run(t, newSession(t, cli, node, opts...))
}

// run runs s until the test ends or stop is called.
func run(t *testing.T, s *Session) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		cancel()
		<-s.Done()
	})
	return started{Session: s, stop: stop}
}

// await waits up to timeout for cond.
func await(t *testing.T, s *Session, timeout time.Duration, what string, cond func(Info) bool) Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	info, err := s.Await(ctx, cond)
	if err != nil {
		t.Fatalf("session not %s within %s: last state %+v", what, timeout, info)
	}
	return info
}

// awaitRenewed waits until etcd has answered a keep-alive of the current
// lease: until then the client gives the lease not its TTL but its dial
// timeout + 1s before it declares it lost.
func awaitRenewed(t *testing.T, s *Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if info, _ := s.Info(); !info.Renewed.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no keep-alive answer within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func registered(n int) func(Info) bool {
	return func(i Info) bool { return i.Phase == Registered && i.Registrations >= n }
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkRegistered checks that the member key holds the member and is bound
// to lease.
func checkRegistered(t *testing.T, cli *clientv3.Client, s *Session, lease clientv3.LeaseID) Member {
	t.Helper()
	resp, err := cli.Get(testCtx(t), s.MemberKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("%s is absent", s.MemberKey())
	}
	kv := resp.Kvs[0]
	if clientv3.LeaseID(kv.Lease) != lease {
		t.Fatalf("%s is bound to lease %x, want %x", s.MemberKey(), kv.Lease, lease)
	}
	m, err := ParseMember(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	if m.Address != testMember.Address || m.HTTP != testMember.HTTP || m.Version != testMember.Version || m.Labels["rack"] != "r1" ||
		m.Kind != keys.Agent || m.StartTime.IsZero() {
		t.Fatalf("member = %+v", m)
	}
	return m
}

func absent(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Kvs) == 0
}

func TestNewChecks(t *testing.T) {
	t.Parallel()
	cli := &clientv3.Client{}
	f := func(what, cluster, node string, m Member, opts ...Option) {
		t.Helper()
		if _, err := New(cli, cluster, node, m, opts...); err == nil {
			t.Errorf("New accepted %s", what)
		}
	}
	f("a bad cluster name", "Prod", "n1", testMember)
	f("a bad node name", "prod", "n/1", testMember)
	f("no kind", "prod", "n1", Member{})
	f("a TTL below 1s", "prod", "n1", testMember, WithTTL(500*time.Millisecond))
	f("a zero revoke timeout", "prod", "n1", testMember, WithRevokeTimeout(0))
	f("a re-registration spread of the TTL", "prod", "n1", testMember, WithTTL(4*time.Second), WithReregisterSpread(4*time.Second))
	if _, err := New(nil, "prod", "n1", testMember); err == nil {
		t.Error("New accepted a nil client")
	}
	s, err := New(cli, "prod", "web-1", Member{Kind: keys.Relay})
	if err != nil {
		t.Fatal(err)
	}
	if s.MemberKey() != "/procfleet/prod/members/relays/web-1" || s.StatusKey() != "/procfleet/prod/status/web-1" {
		t.Errorf("keys %q, %q", s.MemberKey(), s.StatusKey())
	}
	if info, _ := s.Info(); info.Phase != Connecting {
		t.Errorf("phase before Run = %v", info.Phase)
	}
}

func TestRegisterAndRevoke(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := start(t, cli, "web-1")
	info := await(t, s.Session, 5*time.Second, "registered", registered(1))
	first := checkRegistered(t, cli, s.Session, info.Lease)

	ttl, err := cli.TimeToLive(testCtx(t), info.Lease, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != int64(testTTL/time.Second) || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != s.MemberKey() {
		t.Fatalf("lease: granted TTL %d, keys %q", ttl.GrantedTTL, ttl.Keys)
	}

	// Revoking the lease removes the key; the session registers again by
	// itself, with a new lease and the same start time.
	wch := cli.Watch(testCtx(t), s.MemberKey())
	if _, err := cli.Revoke(testCtx(t), info.Lease); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-wch:
		if len(resp.Events) == 0 || resp.Events[0].Type != clientv3.EventTypeDelete {
			t.Fatalf("after revoke: %+v, want the key deleted", resp.Events)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("member key not deleted after revoke")
	}
	info2 := await(t, s.Session, 5*time.Second, "re-registered", registered(2))
	if info2.Lease == info.Lease {
		t.Fatalf("re-registered with the revoked lease %x", info.Lease)
	}
	again := checkRegistered(t, cli, s.Session, info2.Lease)
	if !again.StartTime.Equal(first.StartTime) {
		t.Errorf("start time changed on re-registration: %v -> %v", first.StartTime, again.StartTime)
	}
}

func TestStopRemovesMember(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := start(t, cli, "web-1", WithTTL(30*time.Second)) // expiry would be far off
	await(t, s.Session, 5*time.Second, "registered", registered(1))
	if err := s.WriteStatus(testCtx(t), []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	s.stop()
	t.Logf("Run returned %s after cancel", time.Since(begin))
	if absent(t, cli, s.MemberKey()) == false || absent(t, cli, s.StatusKey()) == false {
		t.Fatal("member or status key still present after Run returned")
	}
	if info, _ := s.Info(); info.Phase != Closed {
		t.Fatalf("phase after Run = %v", info.Phase)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Run returned")
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
}

// TestStopWhileEtcdDown: Run returns within the revoke timeout even when
// etcd cannot be reached.
func TestStopWhileEtcdDown(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	s := start(t, e.Client(t), "web-1", WithRevokeTimeout(300*time.Millisecond))
	await(t, s.Session, 5*time.Second, "registered", registered(1))
	e.Stop()
	begin := time.Now()
	s.stop()
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("Run took %s to return with etcd down", d)
	}
}
