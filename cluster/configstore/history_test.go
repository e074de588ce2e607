package configstore

import (
	"errors"
	"fmt"
	"testing"

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
	}
}
