package session

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLateKeepAliveKeepsLease: a member whose keep-alive answers come
// later than the TTL (its process short of CPU, its connection congested)
// while its requests still reach etcd keeps its lease and its member key:
// etcd renewed the lease on every request. Registering again instead
// would grant a lease, write the member key again (an event to every
// member's watch) and revoke the old one: the load that kept a fleet of
// 1,000 simulated members from starting (docs/performance.md).
//
// A proxy between the client and etcd holds back etcd's answers (the
// requests go through) until the client has ended the keep-alive.
func TestLateKeepAliveKeepsLease(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	p := newStallProxy(t, strings.TrimPrefix(e.Endpoints[0], "http://"))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + p.addr()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	direct := e.Client(t)

	ended := make(chan struct{})
	var once sync.Once
	log := slog.New(&messageHandler{on: func(msg string) {
		if strings.HasPrefix(msg, "keep-alive of the lease ended") {
			once.Do(func() { close(ended) })
		}
	}})
	// A TTL of 5s leaves the lease, which etcd renewed until the client
	// gave up on it, a few seconds after the client's verdict.
	const ttl = 5 * time.Second
	s := start(t, cli, "late", WithTTL(ttl), WithLogger(log))
	info := await(t, s.Session, 10*time.Second, "registered", registered(1))
	awaitRenewed(t, s.Session)
	before, err := direct.Get(testCtx(t), s.MemberKey())
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("member key before the stall: %v, %+v", err, before)
	}

	p.stall(true)
	select {
	case <-ended:
	case <-time.After(3 * ttl):
		p.stall(false)
		t.Fatalf("the client did not end the keep-alive within %s of holding back etcd's answers", 3*ttl)
	}
	p.stall(false)

	after := await(t, s.Session, 2*ttl, "keeping its lease", func(i Info) bool { return i.Resumed >= 1 || i.Registrations > 1 })
	if after.Registrations != 1 || after.Lease != info.Lease || after.Phase != Registered {
		t.Fatalf("after late keep-alive answers: %d registrations, lease %x (was %x), phase %s; want the member to keep lease %x",
			after.Registrations, after.Lease, info.Lease, after.Phase, info.Lease)
	}
	// The lease is renewed again, and the member key was not written
	// again: no event went to the fleet's watches.
	renewedAfter := time.Now()
	deadline := time.Now().Add(2 * ttl)
	for {
		if i, _ := s.Info(); i.Renewed.After(renewedAfter) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the kept lease is not renewed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	now, err := direct.Get(testCtx(t), s.MemberKey())
	if err != nil || len(now.Kvs) != 1 {
		t.Fatalf("member key after: %v, %+v", err, now)
	}
	if now.Kvs[0].ModRevision != before.Kvs[0].ModRevision || clientv3.LeaseID(now.Kvs[0].Lease) != info.Lease {
		t.Fatalf("member key rewritten: mod revision %d -> %d, lease %x -> %x",
			before.Kvs[0].ModRevision, now.Kvs[0].ModRevision, info.Lease, now.Kvs[0].Lease)
	}
	s.stop()
}

// TestLostLeaseRegistersAgain: when etcd did let the lease expire, the
// check finds it gone and the session registers again, as before.
func TestLostLeaseRegistersAgain(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := start(t, cli, "revoked")
	info := await(t, s.Session, 10*time.Second, "registered", registered(1))
	awaitRenewed(t, s.Session)
	if _, err := cli.Revoke(testCtx(t), info.Lease); err != nil {
		t.Fatal(err)
	}
	again := await(t, s.Session, 10*time.Second, "registered again", registered(2))
	if again.Lease == info.Lease || again.Resumed != 0 {
		t.Fatalf("after its lease was revoked: lease %x (was %x), resumed %d; want a new lease", again.Lease, info.Lease, again.Resumed)
	}
	checkRegistered(t, cli, s.Session, again.Lease)
	s.stop()
}

// messageHandler calls on with every log message.
type messageHandler struct{ on func(string) }

func (h *messageHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *messageHandler) Handle(_ context.Context, r slog.Record) error {
	h.on(r.Message)
	return nil
}
func (h *messageHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *messageHandler) WithGroup(string) slog.Handler      { return h }

// stallProxy forwards TCP connections to a backend; while stalled, it
// holds back what the backend sends (what the client sends goes through).
type stallProxy struct {
	ln      net.Listener
	backend string

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when the stall ends
	conns   []net.Conn
}

func newStallProxy(t *testing.T, backend string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, backend: backend, resume: make(chan struct{})}
	close(p.resume)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(b, c); b.Close() })
			wg.Go(func() { p.copyBack(c, b); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.stall(false)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

// copyBack copies from the backend to the client, waiting out stalls.
func (p *stallProxy) copyBack(client, backend net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := backend.Read(buf)
		if n > 0 {
			p.mu.Lock()
			resume := p.resume
			p.mu.Unlock()
			<-resume
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.stalled {
		return
	}
	p.stalled = on
	if on {
		p.resume = make(chan struct{})
	} else {
		close(p.resume)
	}
}
