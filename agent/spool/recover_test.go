package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// recordEnd returns the end offsets of the records in a segment file.
func recordEnds(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for off := 0; off+headerSize <= len(b); {
		off += headerSize + int(parseHeader(b[off:]).length)
		ends = append(ends, int64(off))
	}
	return ends
}

func TestTornTail(t *testing.T) {
	f := func(name string, damage func([]byte) []byte, keep int) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, dir, testConfig(1<<20))
			appendN(t, l, 0, 5)
			l.Close()
			segs := segmentFiles(t, dir)
			mutate(t, segs[len(segs)-1], damage)
			l, set := openLog(t, dir, testConfig(1<<20))
			if rec := l.Recovery(); len(rec.Corrupt) != 0 || rec.Records != keep {
				t.Errorf("Recovery() = %+v, want %d records and no corruption", rec, keep)
			}
			if got := metricValue(t, set, "procfleet_spool_corrupt_total"); got != 0 {
				t.Errorf("procfleet_spool_corrupt_total = %v, want 0", got)
			}
			appendN(t, l, 100, 1)
			recs := drain(t, l, true, 100)
			if got, want := payloadsOf(recs), wantPayloads(append(span(0, keep), 100)...); !slices.Equal(got, want) {
				t.Errorf("payloads = %q, want %q", got, want)
			}
		})
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:len(b)-n] } }
	f("1 byte", cut(1), 4)
	f("3 bytes", cut(3), 4)
	f("whole payload", cut(len(payload(4))), 4)
	f("into header", cut(len(payload(4))+5), 4)
	f("whole record", cut(len(payload(4))+headerSize), 4)
	f("zero tail", func(b []byte) []byte { return append(b, make([]byte, 100)...) }, 5)
	f("zero header", func(b []byte) []byte { return append(b, make([]byte, 10)...) }, 5)
}

func TestCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, testConfig(200))
	appendN(t, l, 0, 40)
	l.Close()
	segs := segmentFiles(t, dir)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want at least 4", len(segs))
	}
	// Flip a payload byte of the second record of the second segment, and
	// one in the last segment.
	ends := recordEnds(t, segs[1])
	n0, n1, nLast := len(recordEnds(t, segs[0])), len(ends), len(recordEnds(t, segs[len(segs)-1]))
	mutate(t, segs[1], func(b []byte) []byte { b[ends[0]+headerSize+2] ^= 0x40; return b })
	mutate(t, segs[len(segs)-1], func(b []byte) []byte { b[headerSize] ^= 1; return b })

	l, set := openLog(t, dir, testConfig(200))
	rec := l.Recovery()
	if len(rec.Corrupt) != 2 || !strings.Contains(rec.Corrupt[0], "checksum mismatch") {
		t.Errorf("Recovery().Corrupt = %q, want two checksum mismatches", rec.Corrupt)
	}
	if got := metricValue(t, set, "procfleet_spool_corrupt_total"); got != 2 {
		t.Errorf("procfleet_spool_corrupt_total = %v, want 2", got)
	}
	appendN(t, l, 100, 2)
	recs := drain(t, l, true, 1000)
	// Segment 1 keeps its first record; the last segment keeps nothing.
	var want []int
	want = append(want, span(0, n0+1)...)
	want = append(want, span(n0+n1, 40-nLast)...)
	want = append(want, 100, 101)
	if got := payloadsOf(recs); !slices.Equal(got, wantPayloads(want...)) {
		t.Errorf("payloads = %q, want %q", got, wantPayloads(want...))
	}
	// The new records went to a fresh segment and keep their numbers
	// after another restart.
	l.Close()
	l, _ = openLog(t, dir, testConfig(200))
	if got := l.Recovery(); got.Records != 0 {
		t.Errorf("second restart recovered %+v, want nothing unacked", got)
	}
}

func TestAppendErrors(t *testing.T) {
	t.Run("directory removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "spool")
		l, _ := openLog(t, dir, testConfig(100))
		appendN(t, l, 0, 3)
		first := drain(t, l, false, 1) // opens the head segment
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			err = l.Append(payload(i), time.Now())
		}
		if err == nil || !strings.Contains(err.Error(), "cannot create spool segment") {
			t.Fatalf("Append into a removed directory = %v, want cannot create spool segment", err)
		}
		// Still readable: the head record is at hand.
		if again := drain(t, l, false, 1); again[0].Seq != first[0].Seq {
			t.Errorf("Next after the failure gave seq %d, want %d", again[0].Seq, first[0].Seq)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions")
		}
		dir := t.TempDir()
		l, _ := openLog(t, dir, testConfig(100))
		appendN(t, l, 0, 3)
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			err = l.Append(payload(i), time.Now())
		}
		if err == nil {
			t.Fatal("Append into a read-only directory succeeded")
		}
	})
	t.Run("write fails", func(t *testing.T) {
		l, _ := openLog(t, t.TempDir(), testConfig(1<<20))
		appendN(t, l, 0, 3)
		l.active.Close() // every write now fails, as on a dead disk
		err := l.Append(payload(3), time.Now())
		if err == nil || !strings.Contains(err.Error(), "cannot write spool segment") {
			t.Fatalf("Append = %v, want cannot write spool segment", err)
		}
		recs := drain(t, l, true, 10)
		if got, want := payloadsOf(recs), wantPayloads(0, 1, 2); !slices.Equal(got, want) {
			t.Errorf("payloads after a failed write = %q, want %q", got, want)
		}
	})
	t.Run("closed", func(t *testing.T) {
		l, _ := openLog(t, t.TempDir(), testConfig(1<<20))
		l.Close()
		if err := l.Append(nil, time.Now()); !errors.Is(err, ErrClosed) {
			t.Errorf("Append after Close = %v, want ErrClosed", err)
		}
		if err := l.Ack(1); !errors.Is(err, ErrClosed) {
			t.Errorf("Ack after Close = %v, want ErrClosed", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}
