package targets

import (
	"math"
	"slices"
	"strings"
)

// deferredAssign is an alternative to Assign's greedy pass, measured
// against it (TestFiguresReport) and found no better: the same figures
// within noise, for three times the code.
func deferredAssign(members []string, refs []Ref, load float64) []string {
	names := slices.Clone(members)
	slices.Sort(names)
	names = slices.Compact(names)
	ts, err := prepare(refs)
	if err != nil {
		panic(err)
	}
	mh := make([]uint64, len(names))
	for j, n := range names {
		mh[j] = sumIn(domainMember, n)
	}
	var total uint64
	for _, t := range ts {
		total += t.w
	}
	r := Result{Members: names, Owners: make([]string, len(refs)), Targets: make([]int, len(names)), Weights: make([]uint64, len(names))}
	placeDeferred(ts, mh, loadBound(total, uint64(math.Round(load*1000)), len(names)), &r)
	return r.Owners
}

// placeDeferred gives each target of ts (in placement order) an owner
// among the members of hashes mh, no member's weight over bound where
// weights allow, and records it in r.
//
// It is deferred acceptance (the college admissions algorithm): each
// target proposes to the members in the order of its scores on them; a
// member holds the proposals of highest score on it while their weight
// fits under bound and rejects the others, which propose to their next
// member. A member's targets are thus those that rank it highest and that
// it ranks highest, which keeps them where they are when other members
// come and go: a leaving member's targets propose to their next members,
// which rank them low (a second choice's score is below most first
// choices'), so they displace few others. With equal weights the result
// is the targets' optimal stable matching, which does not depend on the
// order of proposals.
//
// A target heavier than bound alone is pinned first, on the least loaded
// member; one that every member rejects is pinned, after the others, on
// the least loaded member at that point.
//
// Members prefer heavier tiers (weight against the mean: up to 4 times,
// 16, 64, above), then higher scores: without tiers, members fill with
// light targets and the heavy ones, rejected everywhere, end on the least
// loaded member, up to 1.25 times the ideal samples.
func placeDeferred(ts []target, mh []uint64, bound uint64, r *Result) {
	tiers := weightTiers(ts)
	ms := make([]holder, len(mh))
	for j := range ms {
		ms[j].ts, ms[j].tiers = ts, tiers
	}
	last := make([]choice, len(ts)) // the last member each target proposed to
	queue := make([]int32, 0, len(ts))
	for i := range ts {
		if ts[i].w > bound {
			pinLeast(ts, i, mh, ms)
			continue
		}
		last[i] = choice{j: -1}
		queue = append(queue, int32(i))
	}
	var rejectedByAll []int32
	for q := 0; q < len(queue); q++ {
		i := queue[q]
		c, ok := nextChoice(ts[i].h, mh, last[i])
		if !ok {
			rejectedByAll = append(rejectedByAll, i)
			continue
		}
		last[i] = c
		queue = ms[c.j].propose(i, c.s, bound, queue)
	}
	// In placement order, as the targets heavier than bound were.
	slices.Sort(rejectedByAll)
	for _, i := range rejectedByAll {
		pinLeast(ts, int(i), mh, ms)
	}
	for j := range ms {
		for _, e := range ms[j].held {
			ms[j].pinned = append(ms[j].pinned, e.i)
		}
		for _, i := range ms[j].pinned {
			r.Owners[ts[i].idx] = r.Members[j]
			r.Targets[j]++
			r.Weights[j] += ts[i].w
		}
	}
}

// weightTiers returns the tier of each target's weight against the mean.
func weightTiers(ts []target) []uint8 {
	var total uint64
	for _, t := range ts {
		total += t.w
	}
	tiers := make([]uint8, len(ts))
	if len(ts) == 0 {
		return tiers
	}
	mean := max(1, total/uint64(len(ts)))
	for i, t := range ts {
		for lim := 4 * mean; tiers[i] < 3 && t.w > lim; lim *= 4 {
			tiers[i]++
		}
	}
	return tiers
}

// pinLeast gives target i to the least loaded member, the highest
// scoring among equals; it is never rejected.
func pinLeast(ts []target, i int, mh []uint64, ms []holder) {
	best := 0
	var bestScore uint64
	for j, m := range mh {
		s := score(ts[i].h, m)
		if j == 0 || ms[j].load < ms[best].load || ms[j].load == ms[best].load && s > bestScore {
			best, bestScore = j, s
		}
	}
	ms[best].pinned = append(ms[best].pinned, int32(i))
	ms[best].load += ts[i].w
}

// choice is a member a target proposed to, and its score there. Members
// are ranked by score, higher first, then by index.
type choice struct {
	s uint64
	j int // -1 before the first proposal
}

// nextChoice returns the member that follows last in the ranking of
// target hash th, false when last was the final one.
func nextChoice(th uint64, mh []uint64, last choice) (choice, bool) {
	best := choice{j: -1}
	for j, m := range mh {
		s := score(th, m)
		if last.j >= 0 && (s > last.s || s == last.s && j <= last.j) {
			continue // at or before last in the ranking
		}
		if best.j < 0 || s > best.s {
			best = choice{s: s, j: j}
		}
	}
	return best, best.j >= 0
}

// holder is a member during placement: the targets it holds, lowest
// tier first and, within a tier, lowest score first; and those pinned on
// it.
type holder struct {
	ts     []target
	tiers  []uint8
	held   []entry // a min-heap by (tier, s, h, id)
	pinned []int32
	load   uint64 // weight held and pinned
}

// entry is a held target and its score on the member.
type entry struct {
	s uint64
	i int32
}

// propose takes target i, of score s on the member, and rejects the
// lowest held targets, i among them, while the load exceeds bound. The
// rejected are appended to queue, which propose returns.
func (m *holder) propose(i int32, s, bound uint64, queue []int32) []int32 {
	m.push(entry{s: s, i: i})
	m.load += m.ts[i].w
	for m.load > bound && len(m.held) > 0 {
		e := m.pop()
		m.load -= m.ts[e.i].w
		queue = append(queue, e.i)
	}
	return queue
}

// less orders held targets: lower tier, then lower score, first.
func (m *holder) less(x, y entry) bool {
	if tx, ty := m.tiers[x.i], m.tiers[y.i]; tx != ty {
		return tx < ty
	}
	if x.s != y.s {
		return x.s < y.s
	}
	tx, ty := &m.ts[x.i], &m.ts[y.i]
	if tx.h != ty.h {
		return tx.h < ty.h
	}
	return strings.Compare(tx.id, ty.id) < 0
}

// push adds e to the heap held. (container/heap would box each entry.)
func (m *holder) push(e entry) {
	h := append(m.held, e)
	k := len(h) - 1
	for k > 0 {
		p := (k - 1) / 2
		if !m.less(h[k], h[p]) {
			break
		}
		h[k], h[p] = h[p], h[k]
		k = p
	}
	m.held = h
}

// pop removes and returns the least entry of the heap held.
func (m *holder) pop() entry {
	h := m.held
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for k := 0; ; {
		c := 2*k + 1
		if c >= n {
			break
		}
		if c+1 < n && m.less(h[c+1], h[c]) {
			c++
		}
		if !m.less(h[c], h[k]) {
			break
		}
		h[k], h[c] = h[c], h[k]
		k = c
	}
	m.held = h
	return top
}
