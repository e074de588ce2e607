package sched

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
)

type countGen struct {
	name  string
	sleep time.Duration
	fail  bool
	runs  atomic.Int64
	ts    atomic.Int64
}

func (g *countGen) Name() string { return g.name }
func (g *countGen) Collect(s *emit.Scan) error {
	g.runs.Add(1)
	g.ts.Store(s.Timestamp())
	s.Begin("runs").Label("g", g.name).Value(float64(g.runs.Load()))
	time.Sleep(g.sleep)
	if g.fail {
		return errors.New("broken source")
	}
	return nil
}

func TestSchedulerIntervalsOverrunsAndErrors(t *testing.T) {
	pool := emit.NewPool(8)
	sink := &emit.MemSink{Pool: pool}
	set := metrics.NewSet()
	fast := &countGen{name: "fast"}
	slow := &countGen{name: "slow", sleep: 250 * time.Millisecond}
	bad := &countGen{name: "bad", fail: true}
	s, err := New(2, []Job{
		{Gen: fast, Interval: 100 * time.Millisecond, FullEvery: 10},
		{Gen: slow, Interval: 100 * time.Millisecond, FullEvery: 10},
		{Gen: bad, Interval: 200 * time.Millisecond},
	}, Deps{Pool: pool, Sink: sink, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1600*time.Millisecond {
		t.Fatalf("Run returned %s after its context ended; want prompt return", d-1200*time.Millisecond)
	}
	if n := fast.runs.Load(); n < 6 || n > 13 {
		t.Fatalf("fast generator ran %d times in 1.2s at 100ms, want about 12", n)
	}
	if n := slow.runs.Load(); n < 2 || n > 5 {
		t.Fatalf("slow generator (250ms scans, 100ms interval) ran %d times, want about 4", n)
	}
	if ts := fast.ts.Load(); ts%100 != 0 {
		t.Fatalf("timestamp %d is not aligned to the 100ms grid", ts)
	}
	var out strings.Builder
	set.WritePrometheus(&out)
	m := out.String()
	for _, want := range []string{
		`procfleet_generator_errors_total{generator="fast"} 0`,
		`procfleet_scheduler_overruns_total{generator="fast"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, `procfleet_generator_errors_total{generator="bad"} 0`) || !strings.Contains(m, `procfleet_generator_errors_total{generator="bad"}`) {
		t.Errorf("bad generator's errors not counted:\n%s", m)
	}
	if strings.Contains(m, `procfleet_scheduler_overruns_total{generator="slow"} 0`) {
		t.Errorf("slow generator counted no overruns:\n%s", m)
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers in use after Run returned", pool.InUse())
	}
	if got := string(sink.Take()); !strings.Contains(got, `runs{g="fast"} 1 `) {
		t.Fatalf("sink lacks the first fast line:\n%.300s", got)
	}
}

func TestNextDeadlineSkipsMissed(t *testing.T) {
	base := time.Unix(1000, 0)
	if got := nextDeadline(base, time.Second, base.Add(100*time.Millisecond)); !got.Equal(base.Add(time.Second)) {
		t.Fatalf("on time: next = %v", got)
	}
	if got := nextDeadline(base, time.Second, base.Add(3500*time.Millisecond)); !got.Equal(base.Add(4 * time.Second)) {
		t.Fatalf("3.5 intervals late: next = %v, want base+4s", got)
	}
}

func TestNewRejectsBadInterval(t *testing.T) {
	_, err := New(1, []Job{{Gen: &countGen{name: "x"}}}, Deps{Pool: emit.NewPool(1), Metrics: metrics.NewSet()})
	if err == nil || !strings.Contains(err.Error(), "x") {
		t.Fatalf("zero interval accepted or unnamed: %v", err)
	}
}

// closeGen is a generator that holds resources between scans.
type closeGen struct {
	countGen
	closedAfter atomic.Int64 // runs when Close was called, -1 before
}

func (g *closeGen) Close() error {
	g.closedAfter.Store(g.runs.Load())
	return nil
}

// Run closes the generators that are io.Closers, after their last scan.
func TestRunClosesGenerators(t *testing.T) {
	pool := emit.NewPool(4)
	g := &closeGen{countGen: countGen{name: "holder", sleep: 30 * time.Millisecond}}
	g.closedAfter.Store(-1)
	s, err := New(1, []Job{{Gen: g, Interval: 20 * time.Millisecond}}, Deps{Pool: pool, Sink: &emit.MemSink{Pool: pool}, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got, runs := g.closedAfter.Load(), g.runs.Load(); got != runs || runs == 0 {
		t.Fatalf("closed after %d of %d runs; want closed once after the last", got, runs)
	}
}

// idleSink records, for each Idle call, how many lines had been sent.
type idleSink struct {
	emit.MemSink
	mu    sync.Mutex
	lines int
	idle  []int
}

func (s *idleSink) Send(ctx context.Context, b *emit.Buffer) error {
	s.mu.Lock()
	s.lines += bytes.Count(b.B, []byte{'\n'})
	s.mu.Unlock()
	return s.MemSink.Send(ctx, b)
}

func (s *idleSink) Idle(context.Context) error {
	s.mu.Lock()
	s.idle = append(s.idle, s.lines)
	s.mu.Unlock()
	return nil
}

// The scheduler tells a batching sink once per tick, after every scan due
// at that tick has sent its lines.
func TestRunTellsSinkWhenIdle(t *testing.T) {
	pool := emit.NewPool(8)
	sink := &idleSink{MemSink: emit.MemSink{Pool: pool}}
	a := &countGen{name: "a", sleep: 10 * time.Millisecond}
	b := &countGen{name: "b", sleep: 30 * time.Millisecond}
	s, err := New(2, []Job{
		{Gen: a, Interval: 100 * time.Millisecond},
		{Gen: b, Interval: 100 * time.Millisecond},
	}, Deps{Pool: pool, Sink: sink, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.idle) < 3 || len(sink.idle) > 6 {
		t.Fatalf("Idle called %d times in 550ms of 100ms ticks, want about 5: %v", len(sink.idle), sink.idle)
	}
	// Each generator writes one line a run: at every idle point both
	// have written theirs for the tick, so the count is even.
	for i, n := range sink.idle {
		if n != 2*(i+1) {
			t.Fatalf("idle point %d came after %d lines, want %d (both scans of the tick): %v", i, n, 2*(i+1), sink.idle)
		}
	}
}
