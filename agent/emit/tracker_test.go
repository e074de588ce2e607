package emit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refTracker is the tracker's contract written the simple way: a map of
// keys to what was last written, a refresh slot per series given round
// robin, and forgetting what a cycle did not see.
type refTracker struct {
	m         map[string]*refEntry
	prev, cur []string
	cycle     uint64
	fullEvery uint64
	next      uint64
}

type refEntry struct {
	bits       uint64
	seen, slot uint64
}

func (r *refTracker) begin(fullEvery int) {
	r.cycle++
	r.fullEvery = uint64(max(fullEvery, 1))
	r.cur = r.cur[:0]
}

func (r *refTracker) due(e *refEntry) bool { return e.slot%r.fullEvery == r.cycle%r.fullEvery }

func (r *refTracker) changed(key string, v float64) bool {
	bits := math.Float64bits(v)
	r.cur = append(r.cur, key)
	e := r.m[key]
	if e == nil {
		r.m[key] = &refEntry{bits: bits, seen: r.cycle, slot: r.next}
		r.next++
		return true
	}
	e.seen = r.cycle
	if e.bits != bits {
		e.bits = bits
		return true
	}
	return r.due(e)
}

// carry returns the keys of the previous cycle's positions from to
// from+n that are due.
func (r *refTracker) carry(from, n int) []string {
	var out []string
	for _, k := range r.prev[from : from+n] {
		r.cur = append(r.cur, k)
		e := r.m[k]
		e.seen = r.cycle
		if r.due(e) {
			out = append(out, fmt.Sprintf("%s %d", k, e.bits))
		}
	}
	return out
}

func (r *refTracker) end() {
	for k, e := range r.m {
		if e.seen != r.cycle {
			delete(r.m, k)
		}
	}
	r.prev, r.cur = append(r.prev[:0], r.cur...), r.prev
}

// The tracker decides exactly as the simple map would, through churn
// that makes it compact many times, repeated and carried series, and
// changes of the refresh period.
func TestTrackerMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker(3)
	ref := &refTracker{m: map[string]*refEntry{}}
	type series struct {
		key string
		v   float64
	}
	var live []series
	born := 0
	compactions := 0
	for cycle := 1; cycle <= 400; cycle++ {
		fullEvery := 3
		if cycle > 200 {
			fullEvery = 1 + cycle%7
		}
		tr.SetFullEvery(fullEvery)
		tr.begin()
		ref.begin(fullEvery)
		// Churn: some series die, some are born (with keys of varied
		// length), most keep their order.
		kept := live[:0]
		for _, s := range live {
			if rng.IntN(20) > 0 {
				kept = append(kept, s)
			}
		}
		live = kept
		for range rng.IntN(60) {
			born++
			live = append(live, series{key: fmt.Sprintf(`m{pid="%d",comm="%s"}`, born, string(make([]byte, rng.IntN(40)))), v: 1})
		}
		if cycle%50 == 0 {
			rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		}
		// Carry the first series of the last cycle when it still is
		// the first of this one, as a generator would.
		start := 0
		if len(ref.prev) > 4 && len(live) > 4 && ref.prev[0] == live[0].key && ref.prev[1] == live[1].key && rng.IntN(2) == 0 {
			var got []string
			if !tr.carry(0, 2, func(key []byte, bits uint64) { got = append(got, fmt.Sprintf("%s %d", key, bits)) }) {
				t.Fatalf("cycle %d: carry refused", cycle)
			}
			if want := ref.carry(0, 2); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("cycle %d: carry wrote %q, want %q", cycle, got, want)
			}
			start = 2
		}
		for i := start; i < len(live); i++ {
			s := &live[i]
			if rng.IntN(4) == 0 {
				s.v++
			}
			if got, want := tr.changed([]byte(s.key), s.v), ref.changed(s.key, s.v); got != want {
				t.Fatalf("cycle %d: changed(%s, %g) = %v, want %v", cycle, s.key, s.v, got, want)
			}
			if rng.IntN(50) == 0 { // the same series twice in one cycle
				if got, want := tr.changed([]byte(s.key), s.v), ref.changed(s.key, s.v); got != want {
					t.Fatalf("cycle %d: repeated changed(%s) = %v, want %v", cycle, s.key, got, want)
				}
			}
		}
		before := len(tr.ents)
		tr.end()
		ref.end()
		if len(tr.ents) < before {
			compactions++
		}
		if tr.Len() != len(ref.m) {
			t.Fatalf("cycle %d: tracker holds %d series, want %d", cycle, tr.Len(), len(ref.m))
		}
		if dead := len(tr.ents) - tr.live; dead > compactAfter && 4*dead > len(tr.ents) {
			t.Fatalf("cycle %d: %d of %d entries forgotten and not compacted", cycle, dead, len(tr.ents))
		}
	}
	if compactions < 3 {
		t.Fatalf("compacted %d times in 400 cycles of churn, want several", compactions)
	}
}

// A tracker whose series all went keeps nothing of them once compacted,
// and one that sees the same series every cycle never copies them.
func TestTrackerGivesBackForgottenKeys(t *testing.T) {
	tr := NewTracker(10)
	key := func(i int) []byte { return fmt.Appendf(nil, `node_x{device="dev%06d"}`, i) }
	tr.begin()
	for i := range 5000 {
		tr.changed(key(i), 1)
	}
	tr.end()
	keys := &tr.keys[0]
	for range 3 {
		tr.begin()
		for i := range 5000 {
			if tr.changed(key(i), 1) && i%10 != int(tr.cycle%10) {
				t.Fatalf("unchanged series %d written outside its refresh", i)
			}
		}
		tr.end()
	}
	if &tr.keys[0] != keys {
		t.Fatal("keys copied although no series went")
	}
	tr.begin()
	for i := range 10 {
		tr.changed(key(i), 1)
	}
	tr.end()
	if tr.Len() != 10 || len(tr.ents) != 10 || len(tr.keys) != 10*len(key(0)) {
		t.Fatalf("after 4990 of 5000 series went: %d live, %d entries, %d key bytes; want 10, 10, %d",
			tr.Len(), len(tr.ents), len(tr.keys), 10*len(key(0)))
	}
	if len(tr.index) > 64 {
		t.Fatalf("index of %d slots for 10 series", len(tr.index))
	}
	// What survived is remembered with its value.
	tr.begin()
	for i := range 10 {
		if got := tr.changed(key(i), 1); got && i%10 != int(tr.cycle%10) {
			t.Fatalf("series %d written after compaction although unchanged", i)
		}
	}
	if !tr.changed(key(10), 1) {
		t.Fatal("a new series was not written")
	}
	tr.end()
}

// BenchmarkTrackerProcesses is the per-process generator's tracker on a
// host of 300 processes (about 20 series each), in steady state.
func BenchmarkTrackerProcesses(b *testing.B) {
	tr := NewTracker(30)
	var keys [][]byte
	for p := range 300 {
		for m := range 20 {
			keys = append(keys, fmt.Appendf(nil, `procfleet_process_metric_%d{pid="%d",comm="process-%d",user="root"}`, m, 1000+p, p))
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.begin()
		for j, k := range keys {
			tr.changed(k, float64(i*(j%3)))
		}
		tr.end()
	}
}
