package emit

import (
	"strings"
	"testing"
)

func TestPrefixSameAsBuiltSeries(t *testing.T) {
	var bare, dev Prefix
	if !bare.Empty() {
		t.Fatal("zero Prefix is not empty")
	}
	f := func(build func(s *Scan)) string {
		t.Helper()
		pool := NewPool(2)
		sink := &MemSink{Pool: pool}
		s := NewScan(pool, sink, nil)
		s.Start(t.Context(), 0)
		build(s)
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		return string(sink.Take())
	}
	want := f(func(s *Scan) {
		s.Begin("up").Value(1)
		s.Begin("m").Label("device", `a"b`).Value(2)
		s.Begin("m").Label("device", `a"b`).Label("cpu", "3").Value(3)
	})
	got := f(func(s *Scan) {
		s.Begin("up").SavePrefix(&bare)
		s.Begin("m").Label("device", `a"b`).SavePrefix(&dev)
		s.BeginPrefix(&bare).Value(1)
		s.BeginPrefix(&dev).Value(2)
		s.BeginPrefix(&dev).Label("cpu", "3").Value(3)
	})
	if got != want {
		t.Fatalf("series from prefixes:\n%s\nwant:\n%s", got, want)
	}
	if bare.Empty() || !strings.Contains(want, `m{device="a\"b",cpu="3"} 3`) {
		t.Fatalf("unexpected output or empty prefix:\n%s", want)
	}
}

func TestPrefixDoesNotAllocate(t *testing.T) {
	pool := NewPool(2)
	s := NewScan(pool, &MemSink{Pool: pool}, NewTracker(10))
	var p Prefix
	s.Begin("node_network_receive_bytes_total").Label("device", "eth0").SavePrefix(&p)
	if a := testing.AllocsPerRun(20, func() { s.BeginPrefix(&p).Label("cpu", "1") }); a != 0 {
		t.Fatalf("BeginPrefix allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(20, func() { s.Begin("m").Label("k", "v").SavePrefix(&p) }); a != 0 {
		t.Fatalf("SavePrefix into a large enough prefix allocates %.1f times", a)
	}
}

// BenchmarkPrefixSteadyState measures series started from saved prefixes
// whose values do not change, as a device generator emits them between
// refreshes: 8 devices of 16 counters.
func BenchmarkPrefixSteadyState(b *testing.B) {
	pool := NewPool(4)
	s := NewScan(pool, discardSink{pool}, NewTracker(10))
	var keys [8][16]Prefix
	for d := range keys {
		for c := range keys[d] {
			s.Begin("node_network_receive_bytes_total").Label("device", "eth"+string(rune('0'+d))).LabelInt("c", int64(c)).SavePrefix(&keys[d][c])
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Start(b.Context(), int64(i+1))
		for d := range keys {
			for c := range keys[d] {
				s.BeginPrefix(&keys[d][c]).Value(float64(c))
			}
		}
		_ = s.Finish()
	}
}
