package main

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/procfleet/procfleet/cluster/ring"
)

// ringMemo shares ring computations among the simulated members of this
// process (cluster.Config.RingCompute). Every member computes the same
// ring from the same etcd state; on separate hosts each pays for it on its
// own core, which BenchmarkChurn measures, but thousands of members on two
// shared cores would spend the simulation recomputing one ring N times
// over (N² work as the fleet starts or restarts), starving etcd, whose
// load is what the simulator measures. The memo keeps the last 64
// distinct inputs' results; members whose inputs differ (one that does not
// see its own registration yet, a different revision) compute their own.
type ringMemo struct {
	entries sync.Map // inputKey -> *memoEntry
	mu      sync.Mutex
	order   []uint64 // keys in entries, oldest first; under mu

	computed, shared atomic.Int64
}

type memoEntry struct {
	done chan struct{}
	all  map[string]ring.Assignment
	err  error
}

const memoSize = 64

// compute returns the ring of in, computed once for every input in the
// memo. A hit takes no lock: with a mutex around the lookup, 146 of a
// process's 250 members were found queued on it (a holder descheduled
// while the process waits for a CPU holds everyone up), each evaluation
// then taking seconds of the simulator's own making.
func (m *ringMemo) compute(in ring.Input) (map[string]ring.Assignment, error) {
	key := inputKey(in)
	e := &memoEntry{done: make(chan struct{})}
	if v, loaded := m.entries.LoadOrStore(key, e); loaded {
		got := v.(*memoEntry)
		<-got.done
		m.shared.Add(1)
		return got.all, got.err
	}
	e.all, e.err = ring.Compute(in)
	m.computed.Add(1)
	close(e.done)
	m.mu.Lock()
	m.order = append(m.order, key)
	if len(m.order) > memoSize {
		m.entries.Delete(m.order[0])
		m.order = slices.Delete(m.order, 0, 1)
	}
	m.mu.Unlock()
	return e.all, e.err
}

// inputKey hashes everything ring.Compute reads, with the member lists in
// a canonical order (64-bit FNV-1a: a collision among the memo's few
// entries is out of practical reach).
func inputKey(in ring.Input) uint64 {
	h := fnv.New64a()
	num := func(v int64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	str := func(s string) {
		num(int64(len(s)))
		h.Write([]byte(s))
	}
	list := func(l []string) {
		l = slices.Clone(l)
		slices.Sort(l)
		l = slices.Compact(l)
		num(int64(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	num(int64(in.Ring.PartitionCount))
	num(int64(in.Ring.ReplicationFactor))
	num(int64(in.Ring.Load * 1e6))
	num(int64(in.Fallbacks))
	num(int64(len(in.Upstreams)))
	for _, u := range in.Upstreams {
		str(u.Name)
		str(u.URL)
		num(int64(u.Capacity))
		if u.Relay {
			num(1)
		} else {
			num(0)
		}
	}
	list(in.Agents)
	list(in.Relays)
	list(in.Down)
	return h.Sum64()
}
