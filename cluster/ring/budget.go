package ring

import "math/bits"

// claim is one member's claim on its primary's capacity.
type claim struct {
	primary int32 // index into the upstreams of Compute; -1 for none
	member  int32 // index into the agents, or ^index into the relays
	weight  int64
}

// shareBudgets fills out with the assignments of the agents of ag and the
// relays of rl, their budgets shared as Compute describes. ups are all
// upstreams, sorted by name; ag's primaries index ups, rl's index the
// upstreams its rings were cut to, mapped into ups by relayToAll (nil:
// the same).
func shareBudgets(out map[string]Assignment, ups []Upstream, ag, rl group, relayToAll []int32) {
	carried := 0 // agents whose primary is a relay upstream
	for _, p := range ag.primary {
		if p >= 0 && ups[p].Relay {
			carried++
		}
	}
	weights := relayWeights(len(rl.nodes), carried)
	claims := make([]claim, 0, len(ag.nodes)+len(rl.nodes))
	i, j := 0, 0
	for i < len(ag.nodes) || j < len(rl.nodes) {
		// Both lists are sorted and share no name: merge them by name.
		if j == len(rl.nodes) || (i < len(ag.nodes) && ag.nodes[i] < rl.nodes[j]) {
			claims = append(claims, claim{ag.primary[i], int32(i), 1})
			i++
			continue
		}
		p := rl.primary[j]
		if p >= 0 && relayToAll != nil {
			p = relayToAll[p]
		}
		claims = append(claims, claim{p, ^int32(j), weights[j]})
		j++
	}
	budgets := shareCapacity(ups, claims)
	for k, c := range claims {
		g, m := ag, c.member
		if m < 0 {
			g, m = rl, ^m
		}
		out[g.nodes[m]] = Assignment{Node: g.nodes[m], Upstreams: g.lists[m], Budget: budgets[k], Weight: c.weight}
	}
}

// relayWeights returns the weights of n relays, in node name order, that
// carry the traffic of agents agents: agents/n each, one more for the
// first agents%n, and at least 1.
func relayWeights(n, agents int) []int64 {
	w := make([]int64, n)
	for i := range w {
		w[i] = int64(agents / n)
		if i < agents%n {
			w[i]++
		}
		w[i] = max(w[i], 1)
	}
	return w
}

// shareCapacity returns each claim's budget: its primary's capacity times
// its weight over the weight of all claims on that primary, rounded down,
// plus one for the first claims (in order) until what rounding left of
// the capacity is used up. Rounding leaves less than one byte per claim,
// so the budgets on an upstream add up to its capacity.
func shareCapacity(ups []Upstream, claims []claim) []int64 {
	total := make([]int64, len(ups))
	for _, c := range claims {
		if c.primary >= 0 {
			total[c.primary] += c.weight
		}
	}
	given := make([]int64, len(ups))
	budgets := make([]int64, len(claims))
	for i, c := range claims {
		if c.primary >= 0 {
			budgets[i] = mulDiv(ups[c.primary].Capacity, c.weight, total[c.primary])
			given[c.primary] += budgets[i]
		}
	}
	for i, c := range claims {
		if c.primary >= 0 && given[c.primary] < ups[c.primary].Capacity {
			budgets[i]++
			given[c.primary]++
		}
	}
	return budgets
}

// mulDiv returns floor(a * b / c) without overflow, for 0 <= a and
// 0 < b <= c: the result is at most a.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}
