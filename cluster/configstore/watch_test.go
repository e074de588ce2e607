package configstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// next returns the next update, failing the test after timeout.
func next(t *testing.T, ch <-chan Update, timeout time.Duration) Update {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return u
	case <-time.After(timeout):
		t.Fatalf("no update within %s", timeout)
	}
	return Update{}
}

func expectUpdate(t *testing.T, ch <-chan Update, data string, rev int64) {
	t.Helper()
	u := next(t, ch, 10*time.Second)
	if u.Deleted || string(u.Data) != data || u.Revision != rev {
		t.Fatalf("update = %q@%d (deleted %v), want %q@%d", u.Data, u.Revision, u.Deleted, data, rev)
	}
}

func expectQuiet(t *testing.T, ch <-chan Update) {
	t.Helper()
	select {
	case u := <-ch:
		t.Fatalf("unexpected update %q@%d", u.Data, u.Revision)
	case <-time.After(100 * time.Millisecond):
	}
}

// setEventually writes data, retrying while etcd elects a leader or the
// client finds a live member.
func setEventually(t *testing.T, s *Store, data string) int64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cur, err := s.Get(ctx)
		if err == nil {
			var rev int64
			rev, err = s.Set(ctx, []byte(data), cur.Revision)
			if err == nil {
				cancel()
				return rev
			}
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("cannot set %q: %v", data, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	ch := s.Watch(ctx) // before there is a config: nothing yet
	expectQuiet(t, ch)
	r1 := mustSet(t, s, "ok 1", 0)
	expectUpdate(t, ch, "ok 1", r1)
	r2 := mustSet(t, s, "ok 2", r1)
	r3 := mustSet(t, s, "ok 3", r2)
	expectUpdate(t, ch, "ok 2", r2)
	expectUpdate(t, ch, "ok 3", r3)

	// A second watch starts with the current revision.
	ch2 := s.Watch(ctx)
	expectUpdate(t, ch2, "ok 3", r3)
	expectQuiet(t, ch2)

	del, err := cli.Delete(ctx, s.Key())
	if err != nil {
		t.Fatal(err)
	}
	if u := next(t, ch, 5*time.Second); !u.Deleted || u.Revision != del.Header.Revision {
		t.Fatalf("update after delete = %+v, want Deleted at %d", u, del.Header.Revision)
	}

	cancel()
	for range ch { // closed once ctx ends
	}
	for range ch2 {
	}
}

// TestWatchCompacted starts a watch from a revision etcd has compacted away,
// as after a long outage: the watch reads the config again.
func TestWatchCompacted(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	r1 := mustSet(t, s, "ok 1", 0)
	r2 := mustSet(t, s, "ok 2", r1)
	r3 := mustSet(t, s, "ok 3", r2)
	if _, err := cli.Compact(ctx, r3); err != nil {
		t.Fatal(err)
	}
	out := make(chan Update)
	w := &watcher{s: s, out: out, last: r1, from: r1 + 1}
	go w.run(ctx)
	expectUpdate(t, out, "ok 3", r3) // r2 is gone with the compaction
	r4 := mustSet(t, s, "ok 4", r3)
	expectUpdate(t, out, "ok 4", r4)
	cancel()
	for range out {
	}
}

// TestWatchSurvivesRestart stops the only etcd server and starts it again:
// the watch delivers what is written after the restart.
func TestWatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	s := newStore(t, e.Client(t), WithRetry(50*time.Millisecond, 500*time.Millisecond))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	r1 := mustSet(t, s, "ok 1", 0)
	ch := s.Watch(ctx)
	expectUpdate(t, ch, "ok 1", r1)

	e.Stop()
	time.Sleep(time.Second)
	e.Restart(t)
	r2 := setEventually(t, s, "ok 2")
	expectUpdate(t, ch, "ok 2", r2)
}

// TestWatchClusterOutages runs a watch against a three-member cluster
// through the loss of each member in turn (quorum kept: the watch goes on)
// and then of all of them (the watch resumes when they are back).
func TestWatchClusterOutages(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartEtcdCluster(t, 3)
	t.Logf("3-member etcd started in %s", c.StartTime)
	s := newStore(t, c.Client(t), WithRetry(50*time.Millisecond, 500*time.Millisecond))
	writer := newStore(t, c.Client(t))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	rev := mustSet(t, writer, "ok 0", 0)
	ch := s.Watch(ctx)
	expectUpdate(t, ch, "ok 0", rev)

	// Whichever member the watch is attached to, one of these cuts it.
	for i := range 3 {
		c.Stop(t, i)
		data := fmt.Sprintf("ok member %d down", i)
		rev = setEventually(t, writer, data)
		expectUpdate(t, ch, data, rev)
		c.Restart(t, i)
	}

	// All down for longer than the lease TTL the session tests use (2s).
	c.StopAll()
	time.Sleep(2500 * time.Millisecond)
	c.RestartAll(t)
	rev = setEventually(t, writer, "ok after restart")
	expectUpdate(t, ch, "ok after restart", rev)
	expectQuiet(t, ch)
}
