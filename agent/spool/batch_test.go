package spool

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// nextN calls NextN with a deadline and fails the test on an error other
// than the deadline, for which it returns nil.
func nextN(t *testing.T, l *Log, maxRecords, maxBytes int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	recs, err := l.NextN(ctx, maxRecords, maxBytes)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatalf("NextN(%d, %d): %v", maxRecords, maxBytes, err)
	}
	return recs
}

// seqsOf returns the sequence numbers of recs.
func seqsOf(recs []Record) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

// payloadBytes returns the total length of payload(i) for i in [from, to).
func payloadBytes(from, to int) int {
	n := 0
	for i := from; i < to; i++ {
		n += len(payload(i))
	}
	return n
}

func TestNextN(t *testing.T) {
	for _, sync := range []time.Duration{0, time.Millisecond} {
		t.Run(sync.String(), func(t *testing.T) {
			cfg := testConfig(200)
			cfg.SyncInterval = sync
			l, _ := openLog(t, t.TempDir(), cfg)
			if recs := nextN(t, l, 10, 0); recs != nil {
				t.Fatalf("NextN on an empty log = %d records", len(recs))
			}
			appendN(t, l, 0, 30)
			l.mu.Lock()
			inFirst := l.segs[0].n
			l.mu.Unlock()
			if inFirst >= 10 {
				t.Fatalf("first segment holds %d records, want fewer than 10", inFirst)
			}
			f := func(name string, maxRecords, maxBytes int, want ...int) {
				t.Helper()
				recs := nextN(t, l, maxRecords, maxBytes)
				if got, w := payloadsOf(recs), wantPayloads(want...); !slices.Equal(got, w) {
					t.Errorf("%s: NextN(%d, %d) = %q, want %q", name, maxRecords, maxBytes, got, w)
				}
				for i, r := range recs {
					if r.Seq != uint64(want[0]+i+1) {
						t.Errorf("%s: record %d has seq %d, want %d", name, i, r.Seq, want[0]+i+1)
					}
				}
			}
			f("across segments", 10, 0, span(0, 10)...)
			f("again without ack", 10, 0, span(0, 10)...)
			f("one", 1, 0, 0)
			f("below one counts as one", 0, 0, 0)
			f("bytes exactly", 100, payloadBytes(0, 4), span(0, 4)...)
			f("bytes one short", 100, payloadBytes(0, 4)-1, span(0, 3)...)
			f("record over bytes", 100, 1, 0)
			f("records before bytes", 2, payloadBytes(0, 4), 0, 1)
			if err := l.Ack(7); err != nil {
				t.Fatal(err)
			}
			f("after partial ack", 5, 0, span(7, 12)...)
			f("to the end", 100, 0, span(7, 30)...)
			if err := l.Ack(30); err != nil {
				t.Fatal(err)
			}
			if recs := nextN(t, l, 10, 0); recs != nil {
				t.Errorf("NextN after acking all = seqs %v", seqsOf(recs))
			}
			appendN(t, l, 30, 2)
			f("appended later", 10, 0, 30, 31)
		})
	}
}

// TestNextNAge checks that NextN drops over-age records at the head and
// ends a batch before one in the middle, which goes once it is the oldest.
func TestNextNAge(t *testing.T) {
	cfg := testConfig(200)
	cfg.MaxAge = time.Hour
	l, set := openLog(t, t.TempDir(), cfg)
	old := time.Now().Add(-2 * time.Hour)
	for i := range 8 {
		created := time.Now()
		if i < 3 || i == 5 {
			created = old
		}
		if err := l.Append(payload(i), created); err != nil {
			t.Fatal(err)
		}
	}
	dropped := func(want float64) {
		t.Helper()
		if got := metricValue(t, set, `procfleet_spool_dropped_total{reason="age"}`); got != want {
			t.Errorf(`dropped_total{reason="age"} = %v, want %v`, got, want)
		}
	}
	recs := nextN(t, l, 10, 0)
	if got, want := payloadsOf(recs), wantPayloads(3, 4); !slices.Equal(got, want) {
		t.Fatalf("NextN = %q, want %q", got, want)
	}
	dropped(3)
	if n := l.Len(); n != 5 {
		t.Errorf("Len() = %d after dropping 3 of 8, want 5", n)
	}
	if err := l.Ack(recs[len(recs)-1].Seq); err != nil {
		t.Fatal(err)
	}
	recs = nextN(t, l, 10, 0)
	if got, want := payloadsOf(recs), wantPayloads(6, 7); !slices.Equal(got, want) {
		t.Fatalf("NextN = %q, want %q", got, want)
	}
	dropped(4)
}

// TestNextNCorrupt checks that a batch skips what recovery found damaged,
// as Next does.
func TestNextNCorrupt(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, testConfig(200))
	appendN(t, l, 0, 30)
	l.Close()
	segs := segmentFiles(t, dir)
	n0, n1 := len(recordEnds(t, segs[0])), len(recordEnds(t, segs[1]))
	ends := recordEnds(t, segs[1])
	mutate(t, segs[1], func(b []byte) []byte { b[ends[0]+headerSize+2] ^= 0x40; return b })
	l, _ = openLog(t, dir, testConfig(200))
	recs := nextN(t, l, 100, 0)
	want := append(span(0, n0+1), span(n0+n1, 30)...)
	if got := payloadsOf(recs); !slices.Equal(got, wantPayloads(want...)) {
		t.Errorf("NextN = %q, want %q", got, wantPayloads(want...))
	}
	if err := l.Ack(recs[len(recs)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d after acking the batch, want 0", n)
	}
}

func TestNextNClosed(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), testConfig(1<<20))
	done := make(chan error)
	go func() {
		_, err := l.NextN(context.Background(), 10, 0)
		done <- err
	}()
	waitParked(t, "(*Log).NextN", "select")
	l.Close()
	if err := recvErr(t, done, "NextN across Close"); !errors.Is(err, ErrClosed) {
		t.Errorf("NextN across Close = %v, want ErrClosed", err)
	}
	if _, err := l.NextN(context.Background(), 10, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("NextN after Close = %v, want ErrClosed", err)
	}
}

func TestLen(t *testing.T) {
	dir := t.TempDir()
	l, set := openLog(t, dir, testConfig(200))
	f := func(what string, want int) {
		t.Helper()
		if n, g := l.Len(), metricValue(t, set, "procfleet_spool_records"); n != want || g != float64(want) {
			t.Errorf("%s: Len() = %d, procfleet_spool_records = %v, want %d", what, n, g, want)
		}
	}
	f("empty", 0)
	appendN(t, l, 0, 20)
	f("after 20 appends", 20)
	if err := l.Ack(6); err != nil {
		t.Fatal(err)
	}
	f("after Ack(6)", 14)
	if err := l.Ack(3); err != nil {
		t.Fatal(err)
	}
	f("after acking again", 14)
	l.Close()
	f("after Close", 14)
	l, set = openLog(t, dir, testConfig(200))
	f("after reopen", 14)
	if err := l.Ack(100); err != nil {
		t.Fatal(err)
	}
	f("after acking all", 0)
}

func TestChanged(t *testing.T) {
	l, _ := openLog(t, t.TempDir(), testConfig(1<<20))
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := l.Changed()
	if fired(ch) {
		t.Fatal("Changed fired on an empty log")
	}
	appendN(t, l, 0, 1)
	if !fired(ch) {
		t.Error("Changed did not fire on Append")
	}
	ch = l.Changed()
	if fired(ch) {
		t.Error("a new Changed channel is closed already")
	}
	if err := l.Ack(1); err != nil {
		t.Fatal(err)
	}
	if fired(ch) {
		t.Error("Changed fired on Ack")
	}
	l.Close()
	if !fired(ch) {
		t.Error("Changed did not fire on Close")
	}
	if !fired(l.Changed()) {
		t.Error("Changed after Close is not closed")
	}
}
