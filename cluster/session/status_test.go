package session

import (
	"errors"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusWrites records the values written to key, with when they came.
func statusWrites(t *testing.T, cli *clientv3.Client, key string) <-chan string {
	t.Helper()
	out := make(chan string, 100)
	wch := cli.Watch(testCtx(t), key)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypePut {
					out <- string(ev.Kv.Value)
				}
			}
		}
	}()
	return out
}

func expectWrite(t *testing.T, ch <-chan string, want string, within time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("status write %q, want %q", got, want)
		}
	case <-time.After(within):
		t.Fatalf("status %q not written within %s", want, within)
	}
}

func expectNoWrite(t *testing.T, ch <-chan string, during time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected status write %q", got)
	case <-time.After(during):
	}
}

func TestStatusRateLimit(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	const interval = 500 * time.Millisecond
	ns := newSession(t, cli, "web-1", WithStatusInterval(interval))
	writes := statusWrites(t, cli, ns.StatusKey())
	if err := ns.WriteStatus(testCtx(t), []byte("early")); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("WriteStatus before registration = %v, want ErrNotRegistered", err)
	}
	// The status set before registration is written with it.
	s := run(t, ns)
	info := await(t, s.Session, 5*time.Second, "registered", registered(1))
	expectWrite(t, writes, "early", time.Second)

	s.SetStatus([]byte("a"))
	expectWrite(t, writes, "a", interval+500*time.Millisecond)
	s.SetStatus([]byte("b"))
	s.SetStatus([]byte("c"))
	expectNoWrite(t, writes, interval/3)  // held back by the limit...
	expectWrite(t, writes, "c", interval) // ...then only the latest
	s.SetStatus([]byte("c"))
	expectNoWrite(t, writes, interval+200*time.Millisecond) // unchanged: not written again

	// Forced writes go out at once.
	begin := time.Now()
	if err := s.WriteStatus(testCtx(t), []byte("forced")); err != nil {
		t.Fatal(err)
	}
	expectWrite(t, writes, "forced", 100*time.Millisecond)
	if d := time.Since(begin); d > interval/2 {
		t.Fatalf("forced write took %s", d)
	}

	resp, err := cli.Get(testCtx(t), s.StatusKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || clientv3.LeaseID(resp.Kvs[0].Lease) != info.Lease {
		t.Fatalf("status key %v not bound to lease %x", resp.Kvs, info.Lease)
	}
}

// TestStatusIntervalChange checks that a shorter interval set while a
// status is held back by the longer one lets it out at once.
func TestStatusIntervalChange(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	ns := newSession(t, cli, "web-1", WithStatusInterval(time.Hour))
	writes := statusWrites(t, cli, ns.StatusKey())
	s := run(t, ns)
	await(t, s.Session, 5*time.Second, "registered", registered(1))
	s.SetStatus([]byte("a")) // the first write: nothing held it back
	expectWrite(t, writes, "a", 2*time.Second)
	s.SetStatus([]byte("b")) // held back for an hour...
	// Time for Run to arm its timer for the hour: were the interval set
	// first, the test would prove nothing (it cannot fail because of it).
	time.Sleep(300 * time.Millisecond)
	s.SetStatusInterval(100 * time.Millisecond)
	expectWrite(t, writes, "b", 3*time.Second) // ...until the interval is 100ms
	s.SetStatusInterval(time.Hour)
	s.SetStatus([]byte("c"))
	time.Sleep(300 * time.Millisecond)
	s.SetStatusInterval(100 * time.Millisecond)
	expectWrite(t, writes, "c", 3*time.Second)
}

// TestStatusWithin checks that a status set by SetStatusWithin is written
// within its time though the interval (an hour) holds other statuses
// back, that a status set later in between is written in its place, and
// that the write counts for the interval: a status set after it is held
// again, which the next SetStatusWithin shows, its write being the only
// one between.
func TestStatusWithin(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	ns := newSession(t, cli, "web-1", WithStatusInterval(time.Hour))
	writes := statusWrites(t, cli, ns.StatusKey())
	s := run(t, ns)
	await(t, s.Session, 5*time.Second, "registered", registered(1))
	s.SetStatus([]byte("a")) // the first write: nothing held it back
	expectWrite(t, writes, "a", 2*time.Second)

	s.SetStatus([]byte("b")) // held back for an hour
	// Time for Run to arm its timer for the hour, so that the status due
	// must re-arm it.
	time.Sleep(300 * time.Millisecond)
	const within = 300 * time.Millisecond
	begin := time.Now()
	s.SetStatusWithin([]byte("c"), within)
	s.SetStatus([]byte("d")) // later, before the write: written in c's place
	expectWrite(t, writes, "d", 5*time.Second)
	if d := time.Since(begin); d < within-50*time.Millisecond {
		t.Errorf("the status due within %s was written after %s; want it to wait for its time (jitter)", within, d)
	}

	s.SetStatus([]byte("e")) // held back by the hour again
	s.SetStatusWithin([]byte("f"), 0)
	expectWrite(t, writes, "f", 5*time.Second)
	s.SetStatus([]byte("g"))
	s.SetStatusWithin([]byte("h"), 100*time.Millisecond)
	expectWrite(t, writes, "h", 5*time.Second) // g was never written alone
}
