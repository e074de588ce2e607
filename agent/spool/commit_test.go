package spool

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncHook replaces the fsync of a Log: the first fsync blocks until it is
// sent its result on release, the others run as usual.
type syncHook struct {
	calls   atomic.Int32
	first   chan struct{} // closed when the first fsync starts
	release chan error
}

// hookSync installs a syncHook on l, which must not be in use yet.
func hookSync(l *Log) *syncHook {
	h := &syncHook{first: make(chan struct{}), release: make(chan error)}
	l.fsync = func(f *os.File) error {
		if h.calls.Add(1) == 1 {
			close(h.first)
			if err := <-h.release; err != nil {
				return err
			}
		}
		return f.Sync()
	}
	return h
}

// waitWritten waits until n records were written to l since it opened
// empty, durable or not.
func waitWritten(t *testing.T, l *Log, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		written := l.wseq - 1
		l.mu.Unlock()
		if written == uint64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records written, want %d", written, n)
		}
	}
}

// appendAsync appends payload(i) for each i in idx, each in its own
// goroutine, and returns their errors once all returned.
func appendAsync(l *Log, idx ...int) func() []error {
	var wg sync.WaitGroup
	errs := make([]error, len(idx))
	for k, i := range idx {
		wg.Go(func() { errs[k] = l.Append(payload(i), time.Now()) })
	}
	return func() []error { wg.Wait(); return errs }
}

// TestGroupCommit shows that Appends waiting during an fsync share the next
// one, and that their records become readable only when it succeeded.
func TestGroupCommit(t *testing.T) {
	const k = 8
	l, set := openLog(t, t.TempDir(), testConfig(1<<20))
	h := hookSync(l)
	leader := appendAsync(l, 0)
	<-h.first
	changed := l.Changed()
	followers := appendAsync(l, span(1, k+1)...)
	waitWritten(t, l, k+1)
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d while the first fsync runs, want 0", n)
	}
	select {
	case <-changed:
		t.Errorf("Changed fired before any record was durable")
	default:
	}
	if recs := drain(t, l, false, 1); len(recs) != 0 {
		t.Errorf("Next returned seq %d before its fsync", recs[0].Seq)
	}
	h.release <- nil
	for _, err := range append(leader(), followers()...) {
		if err != nil {
			t.Errorf("Append: %v", err)
		}
	}
	if got := h.calls.Load(); got != 2 {
		t.Errorf("%d fsyncs for 1 append and %d appends during its fsync, want 2", got, k)
	}
	<-changed
	if n, g := l.Len(), metricValue(t, set, "procfleet_spool_records"); n != k+1 || g != k+1 {
		t.Errorf("Len() = %d, procfleet_spool_records = %v, want %d", n, g, k+1)
	}
	recs := drain(t, l, true, 100)
	got := payloadsOf(recs)
	if len(recs) != k+1 || got[0] != string(payload(0)) {
		t.Fatalf("payloads = %q, want record 0 first and %d in all", got, k+1)
	}
	slices.Sort(got)
	want := wantPayloads(span(0, k+1)...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("payloads = %q, want %q in any order", got, want)
	}
}

// TestGroupCommitSyncFails checks that a failed fsync fails every Append
// it covered and every Append written while it ran, that none of their
// records is ever readable, and that the log goes on; also when Close
// comes while the fsync runs.
func TestGroupCommitSyncFails(t *testing.T) {
	const k = 5
	f := func(name string, fail, closeDuring bool) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, testConfig(1<<20))
			appendN(t, l, 0, 3)
			h := hookSync(l)
			leader := appendAsync(l, 10)
			<-h.first
			followers := appendAsync(l, span(11, 11+k)...)
			waitWritten(t, l, 3+1+k)
			closed := make(chan error, 1)
			if closeDuring {
				go func() { closed <- l.Close() }()
				// Close waits for the fsync that the hook holds.
				waitParked(t, "(*Log).Close", "sync.Cond.Wait")
				select {
				case err := <-closed:
					t.Fatalf("Close returned %v while an fsync runs", err)
				default:
				}
			}
			var injected error
			if fail {
				injected = errors.New("injected EIO")
			}
			h.release <- injected
			for i, err := range append(leader(), followers()...) {
				if fail != (err != nil) || fail && !strings.Contains(err.Error(), "cannot sync spool segment") {
					t.Errorf("Append %d = %v, want failed %v", i, err, fail)
				}
			}
			want := span(0, 3)
			if !fail {
				want = append(want, span(10, 11+k)...)
			}
			if closeDuring {
				if err := <-closed; err != nil {
					t.Errorf("Close = %v", err)
				}
			} else {
				if n := l.Len(); n != len(want) {
					t.Errorf("Len() = %d, want %d", n, len(want))
				}
				// The log goes on, with the numbers of the failed records.
				appendN(t, l, 20, 1)
				want = append(want, 20)
				recs, err := l.NextN(context.Background(), 100, 0)
				if err != nil || recs[len(recs)-1].Seq != uint64(len(want)) {
					t.Fatalf("NextN = %d records, %v; want the last with seq %d", len(recs), err, len(want))
				}
				l.Close()
			}
			if fail {
				fi, err := os.Stat(segmentFiles(t, dir)[0])
				if size := int64(len(want)*headerSize + len(strings.Join(wantPayloads(want...), ""))); err != nil || fi.Size() != size {
					t.Errorf("segment file size %d (%v), want %d: the failed records are left", fi.Size(), err, size)
				}
			}
			l, _ = openLog(t, dir, testConfig(1<<20))
			recs := drain(t, l, true, 100)
			got, w := payloadsOf(recs), wantPayloads(want...)
			slices.Sort(got)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("payloads after reopen = %q, want %q in any order", got, w)
			}
		})
	}
	f("fails", true, false)
	f("fails during close", true, true)
	f("succeeds during close", false, true)
}

// TestGroupCommitConcurrent appends from many goroutines into small
// segments, so that rotations run between shared fsyncs, and checks that
// each returned record is readable and that all survive a reopen once and
// in order.
func TestGroupCommitConcurrent(t *testing.T) {
	const writers, each = 16, 60
	dir := t.TempDir()
	cfg := testConfig(2 << 10)
	l, _ := openLog(t, dir, cfg)
	var returned atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(payload(w*each+i), time.Now()); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				// Every record whose Append returned is readable.
				if n := returned.Add(1); int64(l.Len()) < n {
					t.Errorf("Len() = %d after %d appends returned", l.Len(), n)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(segmentFiles(t, dir)); n < 5 {
		t.Errorf("%d segment files, want rotations", n)
	}
	l, _ = openLog(t, dir, cfg)
	if got := l.Recovery(); got.Records != writers*each || len(got.Corrupt) != 0 || got.Truncated != 0 {
		t.Errorf("Recovery() = %+v, want %d clean records", got, writers*each)
	}
	recs, err := l.NextN(context.Background(), 2*writers*each, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each {
		t.Fatalf("%d records after reopen, want %d", len(recs), writers*each)
	}
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	for i, r := range recs {
		var id int
		if _, err := fmtSscanf(string(r.Data), &id); err != nil || string(r.Data) != string(payload(id)) {
			t.Fatalf("record %d: payload %q", r.Seq, r.Data)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if w := id / each; id <= last[w] {
			t.Fatalf("writer %d: record %d after %d", w, id, last[w])
		} else {
			last[w] = id
		}
	}
	for w, id := range last {
		if id != w*each+each-1 {
			t.Errorf("writer %d: last record %d, want %d", w, id, w*each+each-1)
		}
	}
}
