package emit

import (
	"bytes"
	"hash/maphash"
	"math"
)

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
// The per-process generator's tracker holds every series of every process
// (thousands), for the life of the agent. So that they cost their key's
// bytes and little more, a tracker holds no pointers: keys lie back to back
// in one byte slice, entries in one slice of fixed-size records, and an
// open-addressing table of entry numbers finds a key. A Go map of strings
// to entries cost about 170 bytes a series in two allocations each, which
// every garbage collection marked; this layout about 110, in four
// allocations in all that the collector does not scan
// (docs/performance.md).
//
// A Tracker belongs to one generator and is not safe for concurrent use.
type Tracker struct {
	keys  []byte  // the keys of the entries, back to back
	ents  []entry // entries by number; forgotten ones have off == gone
	index []int32 // open addressing by key hash: entry number+1, 0 empty, tomb
	used  int     // slots of index not empty (live entries and tombs)
	live  int     // entries not forgotten
	// deadKeys and deadEnts count the key bytes and entries of forgotten
	// series, which compact gives back.
	deadKeys, deadEnts int

	prev []int32 // entry numbers in the order of the previous cycle
	cur  []int32 // entry numbers in the order of this cycle
	seen int     // distinct entries seen this cycle

	seed      maphash.Seed
	cycle     uint64
	fullEvery uint64
	phased    uint64 // the fullEvery the entries' phases were computed for
	now       uint32 // cycle % fullEvery, computed once per cycle
	next      uint32 // refresh slot of the next new series
}

// entry is one remembered series. Its key is keys[off:off+n].
type entry struct {
	off   uint32
	n     uint32
	hash  uint32 // low bits of the key's hash
	seen  uint32 // low bits of the cycle that last saw the series
	bits  uint64 // the value last written
	slot  uint32 // refresh slot, given round robin (wrapping is harmless)
	phase uint32 // slot % fullEvery: the cycle phase of the series' refresh
}

const (
	gone       = math.MaxUint32 // entry.off of a forgotten entry
	tomb int32 = -1             // index slot of a forgotten entry
	// minIndex is the smallest index table.
	minIndex = 64
	// compactAfter is how many forgotten entries a tracker keeps before
	// it compacts at all, so that a small tracker is not copied for
	// every series it forgets.
	compactAfter = 256
)

// NewTracker returns a tracker that refreshes every series at least every
// fullEvery cycles. fullEvery <= 1 writes every series on every cycle.
func NewTracker(fullEvery int) *Tracker {
	t := &Tracker{seed: maphash.MakeSeed(), index: make([]int32, minIndex)}
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
func (t *Tracker) Len() int { return t.live }

// begin starts a new cycle.
func (t *Tracker) begin() {
	t.cycle++
	if t.phased != t.fullEvery {
		for i := range t.ents {
			t.ents[i].phase = uint32(uint64(t.ents[i].slot) % t.fullEvery)
		}
		t.phased = t.fullEvery
	}
	t.now = uint32(t.cycle % t.fullEvery)
	t.cur = t.cur[:0]
	t.seen = 0
}

// key returns e's key, which aliases t.keys.
func (t *Tracker) key(e *entry) []byte { return t.keys[e.off : e.off+e.n : e.off+e.n] }

// changed records v for the series key and reports whether it must be
// written in this cycle. It allocates only when one of the tracker's
// slices grows for a series seen the first time.
func (t *Tracker) changed(key []byte, v float64) bool {
	bits := math.Float64bits(v)
	cyc := uint32(t.cycle)
	id := int32(-1)
	if i := len(t.cur); i < len(t.prev) {
		if p := t.prev[i]; bytes.Equal(t.key(&t.ents[p]), key) {
			id = p
		}
	}
	if id < 0 {
		h := maphash.Bytes(t.seed, key)
		var slot int
		id, slot = t.find(key, uint32(h))
		if id < 0 {
			t.add(key, uint32(h), bits, slot)
			return true
		}
	}
	e := &t.ents[id]
	t.cur = append(t.cur, id)
	if e.seen != cyc {
		e.seen = cyc
		t.seen++
	}
	if e.bits != bits {
		e.bits = bits
		return true
	}
	return e.phase == t.now
}

// find returns the number of the entry whose key is key (hash h), or -1
// and the index slot a new entry for it takes.
func (t *Tracker) find(key []byte, h uint32) (id int32, slot int) {
	mask := len(t.index) - 1
	slot = -1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		switch v := t.index[i]; {
		case v == 0:
			if slot < 0 {
				slot = i
			}
			return -1, slot
		case v == tomb:
			if slot < 0 {
				slot = i
			}
		default:
			if e := &t.ents[v-1]; e.hash == h && bytes.Equal(t.key(e), key) {
				return v - 1, i
			}
		}
	}
}

// add remembers a new series in index slot slot, as seen in this cycle.
func (t *Tracker) add(key []byte, h uint32, bits uint64, slot int) {
	id := int32(len(t.ents))
	t.ents = append(t.ents, entry{
		off: uint32(len(t.keys)), n: uint32(len(key)), hash: h,
		seen: uint32(t.cycle), bits: bits,
		slot: t.next, phase: uint32(uint64(t.next) % t.fullEvery),
	})
	t.keys = append(t.keys, key...)
	t.next++
	if t.index[slot] == 0 {
		t.used++
	}
	t.index[slot] = id + 1
	t.live++
	t.cur = append(t.cur, id)
	t.seen++
	if 2*t.used > len(t.index) {
		t.reindex()
	}
}

// reindex rebuilds the index for the live entries, at most a third full.
func (t *Tracker) reindex() {
	n := minIndex
	for n < 3*(t.live+1) {
		n *= 2
	}
	if n == len(t.index) {
		clear(t.index)
	} else {
		t.index = make([]int32, n)
	}
	mask := n - 1
	for id := range t.ents {
		e := &t.ents[id]
		if e.off == gone {
			continue
		}
		i := int(e.hash) & mask
		for t.index[i] != 0 {
			i = (i + 1) & mask
		}
		t.index[i] = int32(id) + 1
	}
	t.used = t.live
}

// mark returns the position the next series of this cycle takes.
func (t *Tracker) mark() int { return len(t.cur) }

// carry records the n series at positions from to from+n of the previous
// cycle as seen again in this one, with their values unchanged, and calls
// write with the key and value of each whose refresh is due (key aliases
// the tracker's memory: write copies what it keeps). It reports false,
// recording nothing, when the previous cycle had no such positions.
func (t *Tracker) carry(from, n int, write func(key []byte, bits uint64)) bool {
	if from < 0 || n <= 0 || from+n > len(t.prev) {
		return false
	}
	cyc := uint32(t.cycle)
	for _, id := range t.prev[from : from+n] {
		t.cur = append(t.cur, id)
		e := &t.ents[id]
		if e.seen != cyc {
			e.seen = cyc
			t.seen++
		}
		if e.phase == t.now {
			write(t.key(e), e.bits)
		}
	}
	return true
}

// end forgets every series that was not seen in this cycle, and compacts
// the tracker when forgotten series hold a quarter of its keys or entries.
func (t *Tracker) end() {
	if t.seen != t.live {
		// The tracker holds what the last cycle saw (its end kept no
		// more), plus what this one added and saw: the entries to forget
		// are among the last cycle's, and a slice is faster to walk.
		cyc := uint32(t.cycle)
		for _, id := range t.prev {
			if e := &t.ents[id]; e.off != gone && e.seen != cyc {
				t.forget(id)
			}
		}
	}
	t.prev, t.cur = t.cur, t.prev
	if t.deadEnts > compactAfter && (4*t.deadKeys > len(t.keys) || 4*t.deadEnts > len(t.ents)) {
		t.compact()
	}
	// Give back what a cycle of many more series left behind.
	if cap(t.prev) > 2*len(t.prev)+1024 {
		t.prev = append([]int32(nil), t.prev...)
	}
	if cap(t.cur) > 2*len(t.prev)+1024 {
		t.cur = nil
	}
}

// forget removes entry id from the index and marks it forgotten.
func (t *Tracker) forget(id int32) {
	e := &t.ents[id]
	mask := len(t.index) - 1
	for i := int(e.hash) & mask; t.index[i] != 0; i = (i + 1) & mask {
		if t.index[i] == id+1 {
			t.index[i] = tomb
			break
		}
	}
	t.deadKeys += int(e.n)
	t.deadEnts++
	t.live--
	e.off = gone
}

// compact copies the live entries and their keys, in the order of the
// cycle that just ended (t.prev), into slices of their size, renumbers
// t.prev and rebuilds the index.
func (t *Tracker) compact() {
	keyBytes := len(t.keys) - t.deadKeys
	keys := make([]byte, 0, keyBytes+keyBytes/8)
	ents := make([]entry, 0, t.live+t.live/8)
	renum := make([]int32, len(t.ents))
	for i := range renum {
		renum[i] = -1
	}
	for i, id := range t.prev {
		if renum[id] < 0 {
			e := t.ents[id]
			k := t.key(&e)
			e.off = uint32(len(keys))
			keys = append(keys, k...)
			renum[id] = int32(len(ents))
			ents = append(ents, e)
		}
		t.prev[i] = renum[id]
	}
	t.keys, t.ents = keys, ents
	t.deadKeys, t.deadEnts = 0, 0
	t.reindex()
}
