package spool

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	f := func(name string, mod func(*Config), ok bool) {
		t.Helper()
		cfg := DefaultConfig()
		mod(&cfg)
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", name, err, ok)
		}
	}
	f("default", func(*Config) {}, true)
	f("zero segment", func(c *Config) { c.SegmentBytes = 0 }, false)
	f("negative max", func(c *Config) { c.MaxBytes = -1 }, false)
	f("max under segment", func(c *Config) { c.MaxBytes = c.SegmentBytes - 1 }, false)
	f("max bounded", func(c *Config) { c.MaxBytes = 4 * c.SegmentBytes }, true)
	f("bad policy", func(c *Config) { c.Full = 7 }, false)
	f("negative age", func(c *Config) { c.MaxAge = -time.Second }, false)
	f("negative sync", func(c *Config) { c.SyncInterval = -time.Second }, false)
	f("interval sync", func(c *Config) { c.SyncInterval = time.Second }, true)
	f("negative ack", func(c *Config) { c.AckInterval = -time.Second }, false)
	if _, err := Open(t.TempDir(), Config{}, nil); err == nil {
		t.Errorf("Open with zero Config succeeded")
	}
}

func TestAppendNextAckAcrossSegments(t *testing.T) {
	for _, sync := range []time.Duration{0, time.Millisecond} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(200)
			cfg.SyncInterval = sync
			l, set := openLog(t, dir, cfg)
			appendN(t, l, 0, 50)
			if n := len(segmentFiles(t, dir)); n < 5 {
				t.Fatalf("%d segment files after 50 records of 200-byte segments, want >= 5", n)
			}
			if got := metricValue(t, set, "procfleet_spool_records"); got != 50 {
				t.Errorf("procfleet_spool_records = %v, want 50", got)
			}
			// Next without Ack returns the same record.
			a, b := drain(t, l, false, 1), drain(t, l, false, 1)
			if a[0].Seq != 1 || b[0].Seq != 1 {
				t.Fatalf("Next twice without Ack gave seqs %d, %d; want 1, 1", a[0].Seq, b[0].Seq)
			}
			recs := drain(t, l, true, 100)
			if got, want := payloadsOf(recs), wantPayloads(span(0, 50)...); !slices.Equal(got, want) {
				t.Fatalf("payloads = %q, want %q", got, want)
			}
			for i, r := range recs {
				if r.Seq != uint64(i+1) {
					t.Fatalf("record %d has seq %d", i, r.Seq)
				}
			}
			if n := len(segmentFiles(t, dir)); n != 1 {
				t.Errorf("%d segment files after acking everything, want the active one", n)
			}
			if got := metricValue(t, set, "procfleet_spool_records"); got != 0 {
				t.Errorf("procfleet_spool_records = %v, want 0", got)
			}
			if got := metricValue(t, set, "procfleet_spool_oldest_age_seconds"); got != 0 {
				t.Errorf("procfleet_spool_oldest_age_seconds = %v, want 0", got)
			}
		})
	}
}

func TestRestartKeepsUnacked(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, dir, testConfig(200))
	appendN(t, l, 0, 20)
	drain(t, l, true, 7)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l, set := openLog(t, dir, testConfig(200))
	if got := metricValue(t, set, "procfleet_spool_records"); got != 13 {
		t.Errorf("procfleet_spool_records after restart = %v, want 13", got)
	}
	appendN(t, l, 20, 3)
	recs := drain(t, l, true, 100)
	if got, want := payloadsOf(recs), wantPayloads(span(7, 23)...); !slices.Equal(got, want) {
		t.Fatalf("payloads after restart = %q, want %q", got, want)
	}
	if recs[len(recs)-1].Seq != 23 {
		t.Errorf("last seq %d, want 23: numbering must continue", recs[len(recs)-1].Seq)
	}
}

// TestAckNotPersistedIsRedelivered shows the at-least-once window: acks
// after the last persisted one are delivered again after a crash.
func TestAckNotPersistedIsRedelivered(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(1 << 20)
	cfg.AckInterval = time.Hour
	l, _ := openLog(t, dir, cfg)
	appendN(t, l, 0, 10)
	drain(t, l, true, 4) // the first Ack persists, the next three wait
	// A crash: the first log is never closed before the second opens.
	l2, _ := openLog(t, dir, cfg)
	recs := drain(t, l2, false, 1)
	if recs[0].Seq != 2 {
		t.Errorf("after crash Next gave seq %d, want 2", recs[0].Seq)
	}
}

func TestAge(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(1 << 20)
	cfg.MaxAge = time.Hour
	l, set := openLog(t, dir, cfg)
	old := time.Now().Add(-2 * time.Hour)
	for i := range 5 {
		if err := l.Append(payload(i), old); err != nil {
			t.Fatal(err)
		}
	}
	if got := metricValue(t, set, "procfleet_spool_oldest_age_seconds"); got < 7200 || got > 7300 {
		t.Errorf("procfleet_spool_oldest_age_seconds = %v, want about 7200", got)
	}
	appendN(t, l, 5, 2)
	recs := drain(t, l, true, 100)
	if got, want := payloadsOf(recs), wantPayloads(5, 6); !slices.Equal(got, want) {
		t.Errorf("payloads = %q, want %q", got, want)
	}
	if got := metricValue(t, set, `procfleet_spool_dropped_total{reason="age"}`); got != 5 {
		t.Errorf(`dropped_total{reason="age"} = %v, want 5`, got)
	}
}

func TestFull(t *testing.T) {
	const seg, max = 200, 800
	t.Run("refuse", func(t *testing.T) {
		cfg := testConfig(seg)
		cfg.MaxBytes = max
		l, set := openLog(t, t.TempDir(), cfg)
		n := 0
		for ; n < 1000; n++ {
			err := l.Append(payload(n), time.Now())
			if errors.Is(err, ErrFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 || n == 1000 {
			t.Fatalf("ErrFull after %d appends", n)
		}
		if got := metricValue(t, set, "procfleet_spool_bytes"); got > max {
			t.Errorf("procfleet_spool_bytes = %v over MaxBytes %d", got, max)
		}
		recs := drain(t, l, true, 1000)
		if got, want := payloadsOf(recs), wantPayloads(span(0, n)...); !slices.Equal(got, want) {
			t.Fatalf("payloads = %q, want %q", got, want)
		}
		// Acked data makes room again, even in the active segment.
		appendN(t, l, n, n/2)
		if got := metricValue(t, set, `procfleet_spool_dropped_total{reason="full"}`); got != 0 {
			t.Errorf(`dropped_total{reason="full"} = %v, want 0`, got)
		}
	})
	t.Run("drop oldest", func(t *testing.T) {
		cfg := testConfig(seg)
		cfg.MaxBytes = max
		cfg.Full = DropOldest
		l, set := openLog(t, t.TempDir(), cfg)
		appendN(t, l, 0, 100)
		if got := metricValue(t, set, "procfleet_spool_bytes"); got > max {
			t.Errorf("procfleet_spool_bytes = %v over MaxBytes %d", got, max)
		}
		recs := drain(t, l, true, 1000)
		dropped := int(metricValue(t, set, `procfleet_spool_dropped_total{reason="full"}`))
		if dropped+len(recs) != 100 || dropped == 0 {
			t.Fatalf("%d delivered + %d dropped, want 100 with some dropped", len(recs), dropped)
		}
		if got, want := payloadsOf(recs), wantPayloads(span(dropped, 100)...); !slices.Equal(got, want) {
			t.Errorf("payloads = %q, want the newest %q", got, want)
		}
	})
	t.Run("record over max", func(t *testing.T) {
		cfg := testConfig(seg)
		cfg.MaxBytes = seg
		cfg.Full = DropOldest
		l, _ := openLog(t, t.TempDir(), cfg)
		if err := l.Append(make([]byte, seg), time.Now()); !errors.Is(err, ErrFull) {
			t.Errorf("Append over MaxBytes = %v, want ErrFull", err)
		}
	})
}

func TestConcurrent(t *testing.T) {
	for _, sync := range []time.Duration{0, time.Millisecond} {
		t.Run(sync.String(), func(t *testing.T) { testConcurrent(t, sync) })
	}
}

// testConcurrent appends from several goroutines while one reads and acks.
func testConcurrent(t *testing.T, syncInterval time.Duration) {
	const writers, each = 4, 300
	cfg := testConfig(4 << 10)
	cfg.SyncInterval = syncInterval
	l, _ := openLog(t, t.TempDir(), cfg)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(payload(w*each+i), time.Now()); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	for n := 0; n < writers*each; n++ {
		r, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d records: %v", n, err)
		}
		var id int
		if _, err := fmtSscanf(string(r.Data), &id); err != nil {
			t.Fatalf("payload %q: %v", r.Data, err)
		}
		if w := id / each; id <= last[w] {
			t.Fatalf("writer %d: record %d after %d", w, id, last[w])
		} else {
			last[w] = id
		}
		if err := l.Ack(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// A blocked Next returns when the log closes.
	done := make(chan error)
	go func() {
		_, err := l.Next(context.Background())
		done <- err
	}()
	waitParked(t, "(*Log).NextN", "select")
	l.Close()
	if err := recvErr(t, done, "Next across Close"); !errors.Is(err, ErrClosed) {
		t.Errorf("Next across Close = %v, want ErrClosed", err)
	}
}
