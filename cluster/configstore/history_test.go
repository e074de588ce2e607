package configstore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestHistoryAndRollback(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx := testCtx(t)

	var revs []int64
	var prev int64
	for i := range 4 {
		prev = mustSet(t, s, fmt.Sprintf("ok v%d", i), prev)
		revs = append(revs, prev)
	}
	// Unrelated writes move etcd's revision on; the config's does not.
	other, err := cli.Put(ctx, "/other", "x")
	if err != nil {
		t.Fatal(err)
	}

	h, err := s.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 {
		t.Fatalf("History has %d versions, want 4: %v", len(h), h)
	}
	for i, v := range h {
		j := len(revs) - 1 - i
		if v.Revision != revs[j] || string(v.Data) != fmt.Sprintf("ok v%d", j) {
			t.Errorf("History[%d] = %q@%d, want %q@%d", i, v.Data, v.Revision, fmt.Sprintf("ok v%d", j), revs[j])
		}
	}

	// Compaction removes etcd's MVCC history, not ours.
	if _, err := cli.Compact(ctx, prev+1); err != nil {
		t.Fatal(err)
	}
	r, err := s.Rollback(ctx, revs[1], prev)
	if err != nil {
		t.Fatalf("Rollback to %d: %v", revs[1], err)
	}
	v, _ := s.Get(ctx)
	if string(v.Data) != "ok v1" || v.Revision != r || r <= prev {
		t.Fatalf("after rollback config = %q@%d, want %q at a new revision above %d", v.Data, v.Revision, "ok v1", prev)
	}
	if h, _ := s.History(ctx); len(h) != 5 || h[0].Revision != r || h[1].Revision != prev {
		t.Fatalf("history after rollback: %v", h)
	}

	if _, err := s.Rollback(ctx, revs[0], prev); !errors.Is(err, ErrConflict) {
		t.Errorf("Rollback with a stale expected revision = %v, want ErrConflict", err)
	}
	if _, err := s.Rollback(ctx, revs[0]+1000, r); !errors.Is(err, ErrNoRevision) {
		t.Errorf("Rollback to an unknown revision = %v, want ErrNoRevision", err)
	}
	if _, err := s.Rollback(ctx, other.Header.Revision, r); !errors.Is(err, ErrNoRevision) {
		t.Errorf("Rollback to a revision the config never had = %v, want ErrNoRevision", err)
	}
}

func TestRollbackValidates(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx := testCtx(t)

	// A version the rules no longer accept, written around the store.
	put, err := cli.Put(ctx, s.Key(), "bad old")
	if err != nil {
		t.Fatal(err)
	}
	r := mustSet(t, s, "ok new", put.Header.Revision)
	if _, err := s.Rollback(ctx, put.Header.Revision, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Rollback to an invalid version = %v, want ErrInvalid", err)
	}
	if v, _ := s.Get(ctx); v.Revision != r {
		t.Fatalf("rejected rollback wrote revision %d", v.Revision)
	}
}

func TestRollbackFallsBackToMVCC(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx := testCtx(t)

	// Two versions written around the store: the first is not copied to
	// the history, but etcd still has it.
	p1, err := cli.Put(ctx, s.Key(), "ok etcdctl 1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := cli.Put(ctx, s.Key(), "ok etcdctl 2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(ctx, p1.Header.Revision, p2.Header.Revision); err != nil {
		t.Fatalf("Rollback to an MVCC-only revision: %v", err)
	}
	if v, _ := s.Get(ctx); string(v.Data) != "ok etcdctl 1" {
		t.Fatalf("config = %q", v.Data)
	}
}

func TestHistoryLimit(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	ctx := testCtx(t)
	for _, limit := range []int{0, 1, 3} {
		s, err := New(cli, fmt.Sprintf("limit%d", limit), validYAML, WithHistoryLimit(limit))
		if err != nil {
			t.Fatal(err)
		}
		var rev int64
		var revs []int64
		for i := range 6 {
			rev = mustSet(t, s, fmt.Sprintf("ok %d", i), rev)
			revs = append(revs, rev)
		}
		h, err := s.History(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != limit+1 {
			t.Fatalf("limit %d: History has %d versions, want %d", limit, len(h), limit+1)
		}
		for i, v := range h {
			if want := revs[len(revs)-1-i]; v.Revision != want {
				t.Errorf("limit %d: History[%d] at %d, want %d", limit, i, v.Revision, want)
			}
		}
		kept, err := cli.Get(ctx, fmt.Sprintf("/procfleet/limit%d/config-history/", limit), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if kept.Count != int64(limit) {
			t.Errorf("limit %d: %d history keys in etcd", limit, kept.Count)
		}
		// The records of the versions go with them.
		metas, err := cli.Get(ctx, fmt.Sprintf("/procfleet/limit%d/config-meta-history/", limit), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if metas.Count != int64(limit) {
			t.Errorf("limit %d: %d records of history keys in etcd, want %d", limit, metas.Count, limit)
		}
		for i, v := range h {
			if v.Meta == nil || v.Meta.Time.IsZero() {
				t.Errorf("limit %d: History[%d] has no record: %+v", limit, i, v.Meta)
			}
		}
	}
}

// TestHistoryRecordsWriters checks that each write records who made it,
// when and how, and that the record stays with its version in the history
// and in Revision; a version written around the store (etcdctl) has none,
// and does not inherit the record of the version before it.
func TestHistoryRecordsWriters(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	ctx := testCtx(t)
	alice := Author{User: "alice", Host: "ops-1"}
	s := newStore(t, cli, WithAuthor(alice))
	bob := newStore(t, cli, WithAuthor(Author{User: "bob", Host: "ops-2", EtcdUser: "admin"}))

	before := time.Now().Add(-time.Second)
	r1, err := s.Bootstrap(ctx, []byte("ok 1"), false)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := bob.Set(ctx, []byte("ok 2"), r1, WithNote("config edit"))
	if err != nil {
		t.Fatal(err)
	}
	// r3 is replaced around the store, so it is not kept; r4, written
	// around it, has no record.
	r3 := mustSet(t, s, "ok 3", r2)
	put, err := cli.Put(ctx, s.Key(), "ok etcdctl")
	if err != nil {
		t.Fatal(err)
	}
	r4 := put.Header.Revision
	r5, err := s.Rollback(ctx, r1, r4)
	if err != nil {
		t.Fatal(err)
	}
	if r3 >= r4 {
		t.Fatal("revisions out of order")
	}

	h, err := s.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		rev          int64
		writer, note string
	}
	wants := []want{{r5, "alice@ops-1", fmt.Sprintf("rollback to revision %d", r1)}, {r4, "", ""}, {r2, "admin", "config edit"}, {r1, "alice@ops-1", "bootstrap"}}
	if len(h) != len(wants) {
		t.Fatalf("History has %d versions, want %d", len(h), len(wants))
	}
	for i, w := range wants {
		v := h[i]
		if v.Revision != w.rev {
			t.Fatalf("History[%d] at %d, want %d", i, v.Revision, w.rev)
		}
		if w.writer == "" {
			if v.Meta != nil {
				t.Errorf("revision %d, written by etcdctl, has a record: %+v", v.Revision, *v.Meta)
			}
			continue
		}
		if v.Meta == nil {
			t.Fatalf("revision %d has no record", v.Revision)
		}
		if v.Meta.Writer() != w.writer || v.Meta.Note != w.note || v.Meta.Time.Before(before) || v.Meta.Time.After(time.Now()) {
			t.Errorf("revision %d: writer %q, note %q, time %s; want %q, %q, just now", v.Revision, v.Meta.Writer(), v.Meta.Note, v.Meta.Time, w.writer, w.note)
		}
	}
	for _, w := range wants {
		v, err := s.Revision(ctx, w.rev)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Meta; (got == nil) != (w.writer == "") || got != nil && got.Note != w.note {
			t.Errorf("Revision(%d).Meta = %+v; want note %q", w.rev, got, w.note)
		}
	}
	if v, _ := s.Get(ctx); v.Meta == nil || v.Meta.Note != wants[0].note {
		t.Errorf("Get().Meta = %+v; want the rollback's", v.Meta)
	}
}
