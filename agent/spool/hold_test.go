package spool

import (
	"slices"
	"testing"
	"time"
)

func hold(t *testing.T, l *Log, r Record) {
	t.Helper()
	if err := l.Hold(r); err != nil {
		t.Fatalf("Hold %d: %v", r.Seq, err)
	}
}

func checkCounts(t *testing.T, l *Log, what string, length, held int) {
	t.Helper()
	if l.Len() != length || l.Held() != held {
		t.Fatalf("%s: Len %d, Held %d; want %d and %d", what, l.Len(), l.Held(), length, held)
	}
}

// Held records are past the read position and out of Len, yet readable
// again with ReadFrom until Ack deletes them; in one segment and across
// several (a segment of 64 bytes holds one record).
func TestHold(t *testing.T) {
	for _, segBytes := range []int64{64 << 20, 64} {
		l, set := openLog(t, t.TempDir(), testConfig(segBytes))
		appendN(t, l, 0, 10)
		first := nextN(t, l, 4, 0)
		if got := payloadsOf(first); !slices.Equal(got, wantPayloads(0, 1, 2, 3)) {
			t.Fatalf("segment %d: NextN = %q", segBytes, got)
		}
		hold(t, l, first[3])
		checkCounts(t, l, "held 4", 6, 4)
		if g := metricValue(t, set, "procfleet_spool_held_records"); g != 4 {
			t.Fatalf("procfleet_spool_held_records = %v; want 4", g)
		}
		if got := payloadsOf(nextN(t, l, 3, 0)); !slices.Equal(got, wantPayloads(4, 5, 6)) {
			t.Fatalf("segment %d: NextN after Hold = %q; want records 4 to 6", segBytes, got)
		}
		again, err := l.ReadFrom(first[1].Pos, 2, 0)
		if err != nil || !slices.Equal(payloadsOf(again), wantPayloads(1, 2)) {
			t.Fatalf("segment %d: ReadFrom record 1 = %q, %v", segBytes, payloadsOf(again), err)
		}
		hold(t, l, first[2]) // behind the read position: nothing changes
		checkCounts(t, l, "held again", 6, 4)

		if err := l.Ack(first[1].Seq); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, l, "acked 2", 6, 2)
		again, err = l.ReadFrom(first[0].Pos, 10, 0)
		if err != nil || !slices.Equal(payloadsOf(again), wantPayloads(span(2, 10)...)) {
			t.Fatalf("segment %d: ReadFrom a deleted record = %q, %v; want from the oldest (2)", segBytes, payloadsOf(again), err)
		}

		rest := nextN(t, l, 10, 0)
		hold(t, l, rest[len(rest)-1])
		checkCounts(t, l, "all held", 0, 8)
		if age := l.OldestAge(); age != 0 {
			t.Fatalf("OldestAge with every record held = %s; want 0", age)
		}
		appendN(t, l, 10, 1)
		if got := payloadsOf(nextN(t, l, 10, 0)); !slices.Equal(got, wantPayloads(10)) {
			t.Fatalf("segment %d: NextN after an append behind held records = %q", segBytes, got)
		}
		if err := l.Ack(rest[len(rest)-1].Seq); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, l, "acked all held", 1, 0)
	}
}

// A restart forgets what was held: held records not acknowledged are
// delivered again.
func TestHoldRestart(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, testConfig(1<<20))
	appendN(t, l, 0, 5)
	recs := nextN(t, l, 5, 0)
	hold(t, l, recs[4])
	if err := l.Ack(recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ = openLog(t, dir, testConfig(1<<20))
	checkCounts(t, l, "reopened", 3, 0)
	if got := payloadsOf(nextN(t, l, 5, 0)); !slices.Equal(got, wantPayloads(2, 3, 4)) {
		t.Fatalf("after restart NextN = %q; want the held records 2 to 4", got)
	}
}

// Records over MaxAge at the read position are dropped (counted, held)
// as at the head; OldestAge is that of the oldest record not held.
func TestHoldAge(t *testing.T) {
	cfg := testConfig(1 << 20)
	cfg.MaxAge = time.Hour
	l, set := openLog(t, t.TempDir(), cfg)
	now := time.Now()
	for i, created := range []time.Time{now, now.Add(-2 * time.Hour), now.Add(-time.Minute)} {
		if err := l.Append(payload(i), created); err != nil {
			t.Fatal(err)
		}
	}
	hold(t, l, nextN(t, l, 1, 0)[0])
	if age := l.OldestAge(); age < 2*time.Hour-time.Minute {
		t.Fatalf("OldestAge = %s; want that of record 1, about 2h", age)
	}
	if got := payloadsOf(nextN(t, l, 5, 0)); !slices.Equal(got, wantPayloads(2)) {
		t.Fatalf("NextN = %q; want record 2 (1 is over max age)", got)
	}
	if g := metricValue(t, set, `procfleet_spool_dropped_total{reason="age"}`); g != 1 {
		t.Fatalf("dropped for age = %v; want 1", g)
	}
	checkCounts(t, l, "after the drop", 1, 2)
}

// Hold takes only records read from the log.
func TestHoldErrors(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), testConfig(1<<20))
	appendN(t, l, 0, 2)
	if err := l.Hold(Record{Seq: 1}); err == nil {
		t.Fatal("Hold of a record not read: nil error")
	}
	if err := l.Hold(Record{Seq: 9, Pos: Pos{seq: 9}}); err == nil {
		t.Fatal("Hold of a record not appended: nil error")
	}
	checkCounts(t, l, "after bad holds", 2, 0)
}

// A full log that drops its oldest segment counts only the records not
// delivered as dropped: held ones were.
func TestHoldDropOldest(t *testing.T) {
	cfg := testConfig(64 << 10)
	cfg.MaxBytes = 128 << 10
	cfg.Full = DropOldest
	l, set := openLog(t, t.TempDir(), cfg)
	big := make([]byte, 40<<10)
	for range 2 {
		if err := l.Append(big, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	recs := nextN(t, l, 1, 0)
	hold(t, l, recs[0])
	for range 2 {
		if err := l.Append(big, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if g := metricValue(t, set, `procfleet_spool_dropped_total{reason="full"}`); g != 1 {
		t.Fatalf("dropped for room = %v; want 1 (the held record was delivered)", g)
	}
	checkCounts(t, l, "after the drop", 2, 0)
}

// Held records give their space to new ones: a log at MaxBytes that
// refuses when full deletes segments whose records are all held (the
// active one too, after starting a new one) before it refuses, counting
// nothing as dropped.
func TestHoldGivesWayWhenFull(t *testing.T) {
	f := func(name string, sizes []int) {
		t.Helper()
		cfg := testConfig(64 << 10)
		cfg.MaxBytes = 128 << 10
		l, set := openLog(t, t.TempDir(), cfg)
		for _, n := range sizes {
			if err := l.Append(make([]byte, n), time.Now()); err != nil {
				t.Fatalf("%s: Append: %v", name, err)
			}
		}
		recs := nextN(t, l, 10, 0)
		hold(t, l, recs[len(recs)-1])
		if err := l.Append(make([]byte, 40<<10), time.Now()); err != nil {
			t.Fatalf("%s: Append over held records: %v; want their space", name, err)
		}
		if g := metricValue(t, set, `procfleet_spool_dropped_total{reason="full"}`); g != 0 {
			t.Fatalf("%s: dropped for room = %v; want 0 (held records were delivered)", name, g)
		}
		if l.Len() != 1 {
			t.Fatalf("%s: Len = %d; want the new record", name, l.Len())
		}
		if got := nextN(t, l, 10, 0); len(got) != 1 || len(got[0].Data) != 40<<10 {
			t.Fatalf("%s: NextN after the release = %d records", name, len(got))
		}
	}
	f("older segment", []int{40 << 10, 40 << 10, 40 << 10})
	f("active segment", []int{60 << 10, 60 << 10})
}
