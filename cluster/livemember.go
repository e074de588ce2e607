package cluster

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/procfleet/procfleet/cluster/session"
)

// liveMember is what the member set keeps of a registration: what its
// readers use, and no more, since every member holds one per member of
// the fleet. The readers: compute and the view (the ids), join (Address),
// view.withoutGone (Address and the start time: which process registered)
// and liveAgents (the labels, which scraping selects on).
type liveMember struct {
	// Address is where the member's gossip listens.
	Address string
	// labels are the member's labels, shared by the members that have the
	// same: nil when the registration has none (null or missing), which
	// is not the same as none ({}) to scraping's local jobs.
	labels *labelSet
	// startSec and startNsec are the member's start time (Unix seconds
	// and nanoseconds): a new one means a restarted process.
	startSec  int64
	startNsec int32
}

// Labels returns the member's labels: nil when the registration has none,
// else a map the caller must not change.
func (m liveMember) Labels() map[string]string {
	if m.labels == nil {
		return nil
	}
	return m.labels.m
}

// regID tells the registrations of one node apart: a process that
// registers again after a restart has another start time (or gossip
// address). The zero regID is no registration.
type regID struct {
	address   string
	startSec  int64
	startNsec int32
	set       bool
}

func (m liveMember) id() regID {
	return regID{address: m.Address, startSec: m.startSec, startNsec: m.startNsec, set: true}
}

// labelSet is one set of labels that members registered with. Its map is
// never changed once made: the loop's copy of the set may still use it
// after the watch dropped it.
type labelSet struct {
	m    map[string]string
	hash uint64    // of the labels, the key in the interning table
	refs int       // members of the watch's set that use it
	next *labelSet // another set of the same hash
}

// emptyLabels are the labels of every member registered with {}.
var emptyLabels = &labelSet{m: map[string]string{}}

// labelTable interns the label sets of the members of one set, so that
// members of the same labels (most, in a fleet whose labels say zone or
// role) share one map. Entries are counted by the members using them
// and dropped with the last. It keeps a hash of each set, not a copy of
// its labels, so that labels of one member each cost little more than
// without it. It is not safe for concurrent use.
type labelTable struct {
	sets map[uint64]*labelSet
	seed maphash.Seed
	buf  []byte
}

// intern returns the labelSet of labels (sorted by name, each once, as
// session.Registration has them), counting one more use of it; labels
// is not retained.
func (t *labelTable) intern(labels []session.Label) *labelSet {
	switch {
	case labels == nil:
		return nil
	case len(labels) == 0:
		return emptyLabels
	}
	if t.sets == nil {
		t.sets, t.seed = map[uint64]*labelSet{}, maphash.MakeSeed()
	}
	t.buf = t.buf[:0]
	for _, l := range labels {
		t.buf = binary.AppendUvarint(t.buf, uint64(len(l.Name)))
		t.buf = append(t.buf, l.Name...)
		t.buf = binary.AppendUvarint(t.buf, uint64(len(l.Value)))
		t.buf = append(t.buf, l.Value...)
	}
	h := maphash.Bytes(t.seed, t.buf)
	for ls := t.sets[h]; ls != nil; ls = ls.next {
		if ls.equal(labels) {
			ls.refs++
			return ls
		}
	}
	m := make(map[string]string, len(labels))
	for _, l := range labels {
		m[l.Name] = l.Value
	}
	ls := &labelSet{m: m, hash: h, refs: 1, next: t.sets[h]}
	t.sets[h] = ls
	return ls
}

// equal reports whether ls holds labels, each once.
func (ls *labelSet) equal(labels []session.Label) bool {
	if len(ls.m) != len(labels) {
		return false
	}
	for _, l := range labels {
		if v, ok := ls.m[l.Name]; !ok || v != l.Value {
			return false
		}
	}
	return true
}

// release drops one use of ls (nil and emptyLabels are not counted).
func (t *labelTable) release(ls *labelSet) {
	if ls == nil || ls == emptyLabels {
		return
	}
	if ls.refs--; ls.refs > 0 {
		return
	}
	p := t.sets[ls.hash]
	if p == ls {
		if ls.next == nil {
			delete(t.sets, ls.hash)
		} else {
			t.sets[ls.hash] = ls.next
		}
		return
	}
	for p.next != ls {
		p = p.next
	}
	p.next = ls.next
}

// newLiveMember makes the liveMember of r, its labels interned in t.
func newLiveMember(r session.Registration, t *labelTable) liveMember {
	return liveMember{
		Address: r.Address, labels: t.intern(r.Labels),
		startSec: r.StartTime.Unix(), startNsec: int32(r.StartTime.Nanosecond()),
	}
}
