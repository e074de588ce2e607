package emit

import "math"

// Tracker remembers the last value written for each series of one generator,
// so that a scan writes only the series whose value changed, plus the share
// of series whose full refresh falls on this cycle.
//
// Each series gets a refresh slot when it is first seen, round robin over
// FullEvery slots: every series is written at least once every FullEvery
// cycles, and the refresh is spread evenly across cycles instead of landing
// at once. Series not seen in a scan are forgotten at the end of it, so
// nothing is left behind for a device or process that disappeared.
//
// Generators write their series in much the same order every cycle, so the
// tracker first compares a series with the one at the same position in the
// previous cycle (a memory compare) and hashes only when that misses.
//
// A Tracker belongs to one generator and is not safe for concurrent use.
type Tracker struct {
	m         map[string]*entry
	prev      []*entry // entries in the order of the previous cycle
	cur       []*entry // entries in the order of this cycle
	seen      int      // distinct entries seen this cycle
	cycle     uint64
	fullEvery uint64
	phased    uint64 // the fullEvery the entries' phases were computed for
	now       uint64 // cycle % fullEvery, computed once per cycle
	next      uint64
}

type entry struct {
	key   string
	bits  uint64
	seen  uint64
	slot  uint64
	phase uint64 // slot % fullEvery: the cycle phase of the series' refresh
}

// NewTracker returns a tracker that refreshes every series at least every
// fullEvery cycles. fullEvery <= 1 writes every series on every cycle.
func NewTracker(fullEvery int) *Tracker {
	t := &Tracker{m: make(map[string]*entry)}
	t.SetFullEvery(fullEvery)
	return t
}

// SetFullEvery changes the refresh period, in cycles, from the next cycle on.
func (t *Tracker) SetFullEvery(n int) {
	if n < 1 {
		n = 1
	}
	t.fullEvery = uint64(n)
}

// Len reports how many series the tracker remembers.
func (t *Tracker) Len() int { return len(t.m) }

// begin starts a new cycle.
func (t *Tracker) begin() {
	t.cycle++
	if t.phased != t.fullEvery {
		for _, e := range t.m {
			e.phase = e.slot % t.fullEvery
		}
		t.phased = t.fullEvery
	}
	t.now = t.cycle % t.fullEvery
	t.cur = t.cur[:0]
	t.seen = 0
}

// changed records v for the series key and reports whether it must be
// written in this cycle. It allocates only for a series seen the first time.
func (t *Tracker) changed(key []byte, v float64) bool {
	bits := math.Float64bits(v)
	var e *entry
	if i := len(t.cur); i < len(t.prev) && t.prev[i].key == string(key) {
		e = t.prev[i]
	} else {
		e = t.m[string(key)]
	}
	if e == nil {
		e = &entry{key: string(key), bits: bits, seen: t.cycle, slot: t.next, phase: t.next % t.fullEvery}
		t.m[e.key] = e
		t.next++
		t.cur = append(t.cur, e)
		t.seen++
		return true
	}
	t.cur = append(t.cur, e)
	if e.seen != t.cycle {
		e.seen = t.cycle
		t.seen++
	}
	if e.bits != bits {
		e.bits = bits
		return true
	}
	return e.phase == t.now
}

// mark returns the position the next series of this cycle takes.
func (t *Tracker) mark() int { return len(t.cur) }

// carry records the n series at positions from to from+n of the previous
// cycle as seen again in this one, with their values unchanged, and calls
// write for each whose refresh is due. It reports false, recording
// nothing, when the previous cycle had no such positions.
func (t *Tracker) carry(from, n int, write func(*entry)) bool {
	if from < 0 || n <= 0 || from+n > len(t.prev) {
		return false
	}
	for _, e := range t.prev[from : from+n] {
		t.cur = append(t.cur, e)
		if e.seen != t.cycle {
			e.seen = t.cycle
			t.seen++
		}
		if e.phase == t.now {
			write(e)
		}
	}
	return true
}

// end forgets every series that was not seen in this cycle.
func (t *Tracker) end() {
	if t.seen != len(t.m) {
		// The map holds what the last cycle saw (its end kept no more),
		// plus what this one added and saw: the entries to forget are
		// among the last cycle's, and a slice is faster to walk.
		for _, e := range t.prev {
			if e.seen != t.cycle {
				delete(t.m, e.key)
			}
		}
	}
	t.prev, t.cur = t.cur, t.prev
	// Drop references held past the live length so that forgotten entries
	// can be collected.
	clear(t.cur[len(t.cur):cap(t.cur)])
	if cap(t.prev) > 2*len(t.prev)+1024 {
		t.prev = append([]*entry(nil), t.prev...)
	}
}
