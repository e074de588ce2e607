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
	mu      sync.Mutex
	entries []*memoEntry // most recent last

	computed, shared atomic.Int64
}

type memoEntry struct {
	key  uint64
	done chan struct{}
	all  map[string]ring.Assignment
	err  error
}

const memoSize = 64

func (m *ringMemo) compute(in ring.Input) (map[string]ring.Assignment, error) {
	key := inputKey(in)
	m.mu.Lock()
	for _, e := range m.entries {
		if e.key == key {
			m.mu.Unlock()
			<-e.done
			m.shared.Add(1)
			return e.all, e.err
		}
	}
	e := &memoEntry{key: key, done: make(chan struct{})}
	if len(m.entries) == memoSize {
		m.entries = slices.Delete(m.entries, 0, 1)
	}
	m.entries = append(m.entries, e)
	m.mu.Unlock()
	e.all, e.err = ring.Compute(in)
	m.computed.Add(1)
	close(e.done)
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
