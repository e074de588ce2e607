package emit

import (
	"context"
	"strings"
	"testing"
	"time"
)

type fixedGen struct {
	name string
	vals map[string]float64
	keys []string
}

func (g *fixedGen) Name() string { return g.name }
func (g *fixedGen) Collect(s *Scan) error {
	for _, k := range g.keys {
		s.Begin("m").Label("k", k).Value(g.vals[k])
	}
	return nil
}

func runScan(t *testing.T, s *Scan, sink *MemSink, g Generator, ts int64) string {
	t.Helper()
	s.Start(context.Background(), ts)
	if err := g.Collect(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	return string(sink.Take())
}

func TestTrackerEmitsChangesAndSpreadsRefresh(t *testing.T) {
	pool := NewPool(2)
	sink := &MemSink{Pool: pool}
	tr := NewTracker(4)
	s := NewScan(pool, sink, tr)
	g := &fixedGen{name: "g", vals: map[string]float64{}, keys: []string{"a", "b", "c", "d"}}
	for _, k := range g.keys {
		g.vals[k] = 1
	}
	first := runScan(t, s, sink, g, 1000)
	if n := strings.Count(first, "\n"); n != 4 {
		t.Fatalf("first scan wrote %d lines, want 4:\n%s", n, first)
	}
	if !strings.Contains(first, `m{k="a"} 1 1000`+"\n") {
		t.Fatalf("first scan lacks a's line with timestamp:\n%s", first)
	}
	// Unchanged values: each following cycle refreshes exactly one series,
	// and over 4 cycles every series is refreshed once.
	seen := map[string]int{}
	for c := 0; c < 4; c++ {
		out := runScan(t, s, sink, g, int64(2000+c))
		if n := strings.Count(out, "\n"); n != 1 {
			t.Fatalf("cycle %d wrote %d lines, want 1 refresh:\n%s", c, n, out)
		}
		seen[out[:8]]++
	}
	if len(seen) != 4 {
		t.Fatalf("refresh did not cover all series once: %v", seen)
	}
	// A change is written at once.
	g.vals["c"] = 2
	out := runScan(t, s, sink, g, 3000)
	if !strings.Contains(out, `m{k="c"} 2 3000`) {
		t.Fatalf("changed value not written:\n%s", out)
	}
	// A series that disappears is forgotten.
	g.keys = []string{"a"}
	runScan(t, s, sink, g, 4000)
	if tr.Len() != 1 {
		t.Fatalf("tracker holds %d series after three vanished, want 1", tr.Len())
	}
}

func TestEscaping(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendEscaped(nil, in)); got != want {
			t.Fatalf("AppendEscaped(%q) = %q, want %q", in, got, want)
		}
		if got := string(AppendEscapedBytes(nil, []byte(in))); got != want {
			t.Fatalf("AppendEscapedBytes(%q) = %q, want %q", in, got, want)
		}
	}
	f(`plain`, `plain`)
	f(`a "b" \c`, `a \"b\" \\c`)
	f("two\nlines", `two\nlines`)
	f("bad\xff\xfebytes", "bad\uFFFD\uFFFDbytes")
	f("ünïcode ✓", "ünïcode ✓")
}

func TestAppendValue(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := string(AppendValue(nil, v)); got != want {
			t.Fatalf("AppendValue(%v) = %q, want %q", v, got, want)
		}
	}
	f(0, "0")
	f(12345678, "12345678")
	f(0.01, "0.01")
	f(1.8446744073709552e19, "1.8446744073709552e+19")
	f(-3, "-3")
	f(1795814984.14, "1795814984.14")
	f(0.00001, "1e-05")
}

func TestPoolBounded(t *testing.T) {
	p := NewPool(2)
	a, _ := p.Get(context.Background())
	b, _ := p.Get(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx); err == nil {
		t.Fatal("third Get from a pool of 2 did not wait")
	}
	if p.InUse() != 2 || p.Waits() != 1 {
		t.Fatalf("InUse=%d Waits=%d, want 2 and 1", p.InUse(), p.Waits())
	}
	p.Put(a)
	c, err := p.Get(context.Background())
	if err != nil || c != a {
		t.Fatalf("Get after Put = %p, %v; want the returned buffer", c, err)
	}
	p.Put(b)
	p.Put(c)
	if p.InUse() != 0 {
		t.Fatalf("InUse=%d after all Puts", p.InUse())
	}
}

func TestScanSplitsBuffers(t *testing.T) {
	pool := NewPool(2)
	sink := &MemSink{Pool: pool}
	s := NewScan(pool, sink, nil)
	s.Start(context.Background(), 0)
	long := strings.Repeat("x", 1000)
	for i := 0; i < 200; i++ {
		s.Begin("m").Label("v", long).LabelInt("i", int64(i)).Value(1)
	}
	if err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	out := sink.Take()
	if n := strings.Count(string(out), "\n"); n != 200 || s.Emitted() != 200 {
		t.Fatalf("got %d lines, emitted %d; want 200", n, s.Emitted())
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers still in use", pool.InUse())
	}
}

type discardSink struct{ pool *Pool }

func (d discardSink) Send(_ context.Context, b *Buffer) error {
	d.pool.Put(b)
	return nil
}

// BenchmarkScanSteadyState writes 32 series per scan through a tracker that
// has seen them: the per-series cost every generator pays.
func BenchmarkScanSteadyState(b *testing.B) {
	pool := NewPool(4)
	s := NewScan(pool, discardSink{pool}, NewTracker(10))
	cpus := []string{"0", "1", "2", "3"}
	modes := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Start(context.Background(), int64(i))
		for _, c := range cpus {
			for j, m := range modes {
				s.Begin("node_cpu_seconds_total").Label("cpu", c).Label("mode", m).Value(float64(i*j) / 100)
			}
		}
		_ = s.Finish()
	}
}

// Carry writes exactly what Begin, Label and Value with unchanged values
// would have written, refreshes included, and keeps the series alive.
func TestCarryMatchesValue(t *testing.T) {
	pool := NewPool(4)
	byValue := &MemSink{Pool: pool}
	byCarry := &MemSink{Pool: pool}
	sv := NewScan(pool, byValue, NewTracker(3))
	sc := NewScan(pool, byCarry, NewTracker(3))
	ctx := context.Background()
	series := func(s *Scan) {
		s.Begin("x").Label("pid", "1").Value(1)
		s.Begin("y").Label("pid", "1").Value(2.5)
		s.Begin("z").Value(3)
	}
	from, n := -1, 0
	for cycle := 1; cycle <= 7; cycle++ {
		ts := int64(cycle) * 1000
		sv.Start(ctx, ts)
		series(sv)
		sv.Begin("other").Value(float64(cycle)) // changes every cycle
		if err := sv.Finish(); err != nil {
			t.Fatal(err)
		}
		sc.Start(ctx, ts)
		mark := sc.Mark()
		if cycle == 1 {
			series(sc)
		} else if !sc.Carry(from, n) {
			t.Fatalf("cycle %d: Carry(%d, %d) refused", cycle, from, n)
		}
		from, n = mark, sc.Mark()-mark
		sc.Begin("other").Value(float64(cycle))
		if got, want := sc.Total(), sv.Total(); got != want {
			t.Fatalf("cycle %d: Total %d by carry, %d by value", cycle, got, want)
		}
		if err := sc.Finish(); err != nil {
			t.Fatal(err)
		}
		if got, want := string(byCarry.Take()), string(byValue.Take()); got != want {
			t.Fatalf("cycle %d: carry wrote\n%s\nvalue wrote\n%s", cycle, got, want)
		}
	}
	if n != 3 {
		t.Fatalf("carried %d series, want 3", n)
	}
	sc.Start(ctx, 8000)
	if sc.Carry(from+2, n) { // the previous run had 4 series
		t.Fatal("Carry past the end of the previous run accepted")
	}
	if NewScan(pool, byCarry, nil).Carry(0, 1) {
		t.Fatal("Carry without a tracker accepted")
	}
}
