package configstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// validYAML accepts documents that start with "ok"; enough to tell valid
// from invalid without depending on the config package.
func validYAML(data []byte) error {
	if !strings.HasPrefix(string(data), "ok") {
		return fmt.Errorf("line 1: want a document starting with %q, got %.10q", "ok", data)
	}
	return nil
}

func newStore(t *testing.T, cli *clientv3.Client, opts ...Option) *Store {
	t.Helper()
	s, err := New(cli, "test", validYAML, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSet(t *testing.T, s *Store, data string, expect int64) int64 {
	t.Helper()
	rev, err := s.Set(testCtx(t), []byte(data), expect)
	if err != nil {
		t.Fatalf("Set(%q, %d): %v", data, expect, err)
	}
	return rev
}

func TestNewChecks(t *testing.T) {
	t.Parallel()
	cli := &clientv3.Client{}
	if _, err := New(cli, "Bad/Name", validYAML); err == nil {
		t.Error("New accepted an invalid cluster name")
	}
	if _, err := New(cli, "c", nil); err == nil {
		t.Error("New accepted a nil validate func")
	}
	if _, err := New(cli, "c", validYAML, WithHistoryLimit(-1)); err == nil {
		t.Error("New accepted a negative history limit")
	}
}

func TestGetSet(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	s := newStore(t, e.Client(t))
	ctx := testCtx(t)

	if _, err := s.Get(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on empty etcd = %v, want ErrNotFound", err)
	}
	if _, err := s.Set(ctx, []byte("ok 1"), 5); !errors.Is(err, ErrConflict) {
		t.Fatalf("Set expecting revision 5 of no config = %v, want ErrConflict", err)
	}
	r1 := mustSet(t, s, "ok 1", 0)
	v, err := s.Get(ctx)
	if err != nil || string(v.Data) != "ok 1" || v.Revision != r1 {
		t.Fatalf("Get = %q@%d, %v; want %q@%d", v.Data, v.Revision, err, "ok 1", r1)
	}
	if _, err := s.Set(ctx, []byte("ok 2"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("Set expecting no config = %v, want ErrConflict", err)
	}
	r2 := mustSet(t, s, "ok 2", r1)
	if r2 <= r1 {
		t.Fatalf("revision went from %d to %d", r1, r2)
	}
}

func TestConflictBetweenTwoWriters(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	a := newStore(t, e.Client(t))
	b := newStore(t, e.Client(t))
	ctx := testCtx(t)
	base := mustSet(t, a, "ok base", 0)

	// Both read base; a writes first, b must not overwrite a silently.
	ra := mustSet(t, a, "ok from a", base)
	_, err := b.Set(ctx, []byte("ok from b"), base)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second writer: %v, want ErrConflict", err)
	}
	if want := fmt.Sprintf("expected revision %d, now at %d", base, ra); !strings.Contains(err.Error(), want) {
		t.Errorf("conflict error %q does not say %q", err, want)
	}
	v, _ := b.Get(ctx)
	if string(v.Data) != "ok from a" {
		t.Fatalf("config = %q, want a's write", v.Data)
	}

	// Racing writers from the same revision: exactly one wins.
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := newStore(t, e.Client(t)).Set(ctx, fmt.Appendf(nil, "ok race %d", i), ra)
			errs <- err
		}()
	}
	wins := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			wins++
		case !errors.Is(err, ErrConflict):
			t.Errorf("racing writer: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racing writers won, want 1", wins)
	}
}

func TestValidateRejectsAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	s := newStore(t, cli)
	ctx := testCtx(t)

	check := func(err error) {
		t.Helper()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("err = %v, want ErrInvalid with the validation error", err)
		}
	}
	_, err := s.Bootstrap(ctx, []byte("bad"), false)
	check(err)
	_, err = s.Set(ctx, []byte("bad"), 0)
	check(err)
	r1 := mustSet(t, s, "ok 1", 0)
	_, err = s.Set(ctx, []byte("bad"), r1)
	check(err)

	resp, err := cli.Get(ctx, "/procfleet/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	// The config and, from the same transaction, its record.
	if len(resp.Kvs) != 2 || string(resp.Kvs[0].Value) != "ok 1" || resp.Kvs[0].ModRevision != r1 ||
		string(resp.Kvs[1].Key) != s.space.ConfigMeta() || resp.Kvs[1].ModRevision != r1 {
		t.Fatalf("etcd holds %v, want only the valid config at %d and its record", resp.Kvs, r1)
	}
	if resp.Header.Revision != r1 {
		t.Fatalf("etcd revision %d after rejected writes, want %d: something was written", resp.Header.Revision, r1)
	}
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	e := etcdtest.StartEtcd(t)
	s := newStore(t, e.Client(t))
	ctx := testCtx(t)

	r1, err := s.Bootstrap(ctx, []byte("ok first"), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bootstrap(ctx, []byte("ok second"), false); !errors.Is(err, ErrExists) {
		t.Fatalf("second bootstrap = %v, want ErrExists", err)
	}
	if v, _ := s.Get(ctx); string(v.Data) != "ok first" {
		t.Fatalf("refused bootstrap changed the config to %q", v.Data)
	}
	r2, err := s.Bootstrap(ctx, []byte("ok forced"), true)
	if err != nil {
		t.Fatalf("forced bootstrap: %v", err)
	}
	if v, _ := s.Get(ctx); string(v.Data) != "ok forced" || v.Revision != r2 {
		t.Fatalf("config = %q@%d after forced bootstrap, want %q@%d", v.Data, v.Revision, "ok forced", r2)
	}
	// The overwritten config stays in the history.
	if v, err := s.Revision(ctx, r1); err != nil || string(v.Data) != "ok first" {
		t.Fatalf("Revision(%d) = %q, %v; want the first config", r1, v.Data, err)
	}
}
