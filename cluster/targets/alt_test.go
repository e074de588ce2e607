package targets

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/buraksezer/consistent"
)

// The alternatives that Assign was measured against (see
// docs/design/scraping.md, "Ownership of scrape targets"). Each returns the
// owner of every ref, in the order of refs.
type assigner struct {
	name   string
	assign func(members []string, refs []Ref) []string
}

// alternatives returns Assign and what it was compared with, all with the
// same load bound.
func alternatives(load float64) []assigner {
	cfg := Config{Load: load}
	return []assigner{
		{"rendezvous, greedy bound (Assign)", func(ms []string, refs []Ref) []string {
			r, err := Assign(cfg, ms, refs)
			if err != nil {
				panic(err)
			}
			return r.Owners
		}},
		{"rendezvous, deferred acceptance", func(ms []string, refs []Ref) []string {
			return deferredAssign(ms, refs, load)
		}},
		{"rendezvous, unbounded", func(ms []string, refs []Ref) []string {
			return greedyAssign(ms, refs, 1e9, rendezvousPick)
		}},
		{"consistent v0.10.0, greedy bound", func(ms []string, refs []Ref) []string {
			return greedyAssign(ms, refs, load, consistentPick)
		}},
	}
}

// picker returns the member (an index into the sorted names) that gets a
// target of hash th, ID id and weight w, given the members' loads: the
// first in its order with room under bound, else the least loaded.
type picker func(th uint64, id string, w, bound uint64, loads []uint64) int

// greedyAssign places refs heaviest first, then by hash, each where pick
// says, with bound ceil(load * total / members).
func greedyAssign(members []string, refs []Ref, load float64, newPick func(names []string) picker) []string {
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	ts, err := prepare(refs)
	if err != nil {
		panic(err)
	}
	var total uint64
	for _, t := range ts {
		total += t.w
	}
	bound := uint64(math.Ceil(float64(total) * load / float64(len(names))))
	loads := make([]uint64, len(names))
	owners := make([]string, len(refs))
	pick := newPick(names)
	for _, t := range ts {
		j := pick(t.h, t.id, t.w, bound, loads)
		loads[j] += t.w
		owners[t.idx] = names[j]
	}
	return owners
}

// rendezvousPick is Assign's choice, for greedyAssign.
func rendezvousPick(names []string) picker {
	mh := make([]uint64, len(names))
	for j, n := range names {
		mh[j] = sumIn(domainMember, n)
	}
	return func(th uint64, _ string, w, bound uint64, loads []uint64) int {
		return place(target{h: th, w: w}, mh, loads, bound)
	}
}

// consistentPick places partitions with the library (1021 partitions,
// 20 points per member, load 1.25, the ring package's hasher) and ranks
// the members as its GetClosestN does: the partition's owner, then the
// others in the order of their names' hashes after it.
func consistentPick(names []string) picker {
	const partitions = 1021
	ms := make([]consistent.Member, len(names))
	idx := make(map[string]int, len(names))
	for i, n := range names {
		ms[i] = cmember(n + "\x00")
		idx[n+"\x00"] = i
	}
	c := consistent.New(ms, consistent.Config{Hasher: chasher{}, PartitionCount: partitions, ReplicationFactor: 20, Load: 1.25})
	owner := make([]int, partitions)
	for p := range owner {
		owner[p] = idx[c.GetPartitionOwner(p).String()]
	}
	ring := make([]int, len(names))
	for i := range ring {
		ring[i] = i
	}
	h := func(i int) uint64 { return sum64(names[i] + "\x00") }
	slices.SortFunc(ring, func(a, b int) int { return cmp.Or(cmp.Compare(h(a), h(b)), cmp.Compare(a, b)) })
	pos := make([]int, len(names))
	for p, i := range ring {
		pos[i] = p
	}
	return func(_ uint64, id string, w, bound uint64, loads []uint64) int {
		o := owner[int(sum64(id)%partitions)]
		least := o
		for k := range ring {
			j := ring[(pos[o]+k)%len(ring)]
			if loads[j]+w <= bound {
				return j
			}
			if loads[j] < loads[least] {
				least = j
			}
		}
		return least
	}
}

type cmember string

func (m cmember) String() string { return string(m) }

// chasher is the ring package's hasher: FNV-1a 64 and fmix64.
type chasher struct{}

func (chasher) Sum64(b []byte) uint64 { return sum64(string(b)) }

// targetIDs returns n target IDs as Target.ID makes them, for a job of
// exporters on hosts.
func targetIDs(n int, job string) []string {
	ids := make([]string, n)
	for i := range ids {
		t := Target{
			Address: "host-" + strconv.Itoa(i) + ".dc1.example.com:9100",
			Labels:  []Label{{"env", "prod"}, {"rack", "r" + strconv.Itoa(i%40)}},
		}
		ids[i] = t.ID(job)
	}
	return ids
}

func memberNames(n int) []string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = "scraper-" + strings.Repeat("0", 3-len(strconv.Itoa(i))) + strconv.Itoa(i) + ".eu-1"
	}
	return ms
}
