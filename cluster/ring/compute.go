package ring

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrInvalidInput reports an Input that Compute rejects: an upstream
// without a name or with a negative capacity, two upstreams of one name,
// an agent without a name, or negative Fallbacks.
var ErrInvalidInput = errors.New("ring: invalid input")

// ErrNoLiveUpstream reports that no upstream is live: every configured one
// is down, or none is configured. Compute returns it together with
// assignments whose budgets are 0 and which list every upstream (none if
// none is configured), so that agents keep trying while they spool.
var ErrNoLiveUpstream = errors.New("ring: no live upstream")

// Upstream is one upstream endpoint of the cluster config.
type Upstream struct {
	// Name identifies the upstream in Input.Down and Assignment.Upstreams.
	Name string
	// URL is where the upstream takes imports. Compute does not use it.
	URL string
	// Capacity is what the upstream takes from all agents together, in
	// bytes per second; 0 means not configured.
	Capacity int64
}

// Input is what every agent knows alike: the cluster config, the live
// agents and the upstreams the cluster considers down. The order of the
// names in it does not matter.
type Input struct {
	// Ring tunes the hash ring; the zero value means DefaultConfig().
	Ring Config
	// Revision is the config revision the input was taken from. It is
	// informational: Compute does not use it.
	Revision int64
	// Upstreams are the upstreams of the config; the ring's members.
	Upstreams []Upstream
	// Agents are the node names of the live agents; the ring's keys.
	// Duplicates are ignored.
	Agents []string
	// Down names the upstreams the cluster considers down. Names that
	// are not in Upstreams are ignored: the config may have dropped an
	// upstream before the gossip forgets it.
	Down []string
	// Fallbacks is how many live upstreams follow the primary in each
	// agent's order, when there are that many.
	Fallbacks int
}

// Assignment is where one agent writes and how fast.
type Assignment struct {
	// Node is the agent's node name.
	Node string
	// Upstreams are upstream names, closest first. When any upstream is
	// live: the primary (the agent's first live choice), then up to
	// Input.Fallbacks further live upstreams in ring order, then every
	// down upstream in ring order, last, so that the agent still has
	// somewhere to try when all its live choices fail. When none is
	// live: every upstream in ring order.
	Upstreams []string
	// Budget is the agent's share of its primary's capacity, in bytes per
	// second. 0 means no budget is known: the primary's capacity is not
	// configured (or smaller than the number of agents sharing it), or
	// no upstream is live.
	Budget int64
}

// Compute assigns every agent of in its upstreams and budget. It is a pure
// function, safe for concurrent use: every agent that computes it from the
// same Input, in any order, gets the same map, keyed by node name.
//
// Placement uses two HashRings with DefaultConfig: the full ring of all
// configured upstreams, and the live ring of those not down. An agent
// whose partition the full ring gives to a live upstream keeps that
// upstream as its primary, so an upstream going down or coming back moves
// only the agents that write to it. An agent whose full-ring owner is down
// takes its owner on the live ring instead, where the library has spread
// the down upstream's partitions over the survivors. Either way, an
// upstream that already has ceil(Load * agents / live upstreams) agents
// (agents that stay are placed first, each group in node name order) is
// passed over for the next one in ring order with room: the library bounds
// partitions per upstream, not agents, and this keeps agents per upstream
// within the same factor.
//
// An upstream's capacity is split equally among the agents whose primary
// it is; the remainder of the division goes, one byte per second each, to
// the first of them by node name, so the budgets on an upstream add up to
// its capacity exactly.
//
// It returns ErrInvalidInput (and no map) for an invalid input,
// ErrNoLiveUpstream along with the map when no upstream is live, and
// ErrTooManyMembers for more upstreams than DefaultPartitionCount.
func Compute(in Input) (map[string]Assignment, error) {
	ups, err := checkInput(in)
	if err != nil {
		return nil, err
	}
	agents := slices.Clone(in.Agents)
	slices.Sort(agents)
	agents = slices.Compact(agents)

	cfg := in.Ring
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	full, err := buildTable(cfg, names(ups))
	if err != nil {
		return nil, err
	}
	isDown := make(map[string]bool, len(in.Down))
	for _, d := range in.Down {
		isDown[d] = true
	}
	live := make([]bool, len(ups)) // by index into full.names, which is ups's order
	var liveNames []string
	for i, u := range ups {
		if !isDown[u.Name] {
			live[i] = true
			liveNames = append(liveNames, u.Name)
		}
	}
	out := make(map[string]Assignment, len(agents))
	if len(liveNames) == 0 {
		allDown(out, agents, full)
		return out, fmt.Errorf("%w: %d upstreams configured, none live (config revision %d)", ErrNoLiveUpstream, len(ups), in.Revision)
	}
	var lt *table
	if len(liveNames) < len(ups) {
		if lt, err = buildTable(cfg, liveNames); err != nil {
			return nil, err
		}
	}
	parts := make([]int, len(agents)) // the same in every table: all have cfg.PartitionCount
	for i, a := range agents {
		parts[i] = partition(a, cfg.PartitionCount)
	}
	primary := placePrimaries(cfg, full, lt, live, len(liveNames), parts)
	budgets := shareCapacity(ups, primary)

	nLive := min(1+in.Fallbacks, len(liveNames))
	nDown := len(ups) - len(liveNames)
	per := nLive + nDown
	backing := make([]string, len(agents)*per)
	for i, a := range agents {
		list := backing[i*per : (i+1)*per : (i+1)*per]
		fillUpstreams(list, nLive, full, live, full.startAt(parts[i]), primary[i])
		out[a] = Assignment{Node: a, Upstreams: list, Budget: budgets[i]}
	}
	return out, nil
}

// fillUpstreams fills list with primary p, then the next nLive-1 live
// upstreams and, from index nLive on, the down ones, each in the order of
// the full ring from position start.
func fillUpstreams(list []string, nLive int, full *table, live []bool, start int, p int32) {
	list[0] = full.names[p]
	l, d := 1, nLive
	for k := 0; k < len(full.order) && (l < nLive || d < len(list)); k++ {
		m := full.order[(start+k)%len(full.order)]
		switch {
		case !live[m]:
			list[d] = full.names[m]
			d++
		case m != p && l < nLive:
			list[l] = full.names[m]
			l++
		}
	}
}

// checkInput validates in and returns its upstreams sorted by name.
func checkInput(in Input) ([]Upstream, error) {
	if in.Fallbacks < 0 {
		return nil, fmt.Errorf("%w: fallbacks %d, want 0 or more", ErrInvalidInput, in.Fallbacks)
	}
	for _, a := range in.Agents {
		if a == "" {
			return nil, fmt.Errorf("%w: an agent has an empty node name", ErrInvalidInput)
		}
	}
	ups := slices.Clone(in.Upstreams)
	slices.SortFunc(ups, func(a, b Upstream) int { return strings.Compare(a.Name, b.Name) })
	for i, u := range ups {
		if u.Name == "" {
			return nil, fmt.Errorf("%w: upstream %q has an empty name", ErrInvalidInput, u.URL)
		}
		if u.Capacity < 0 {
			return nil, fmt.Errorf("%w: upstream %q: capacity %d, want 0 or more bytes per second", ErrInvalidInput, u.Name, u.Capacity)
		}
		if i > 0 && ups[i-1].Name == u.Name {
			return nil, fmt.Errorf("%w: upstream %q appears twice", ErrInvalidInput, u.Name)
		}
	}
	return ups, nil
}

func names(ups []Upstream) []string {
	ns := make([]string, len(ups))
	for i, u := range ups {
		ns[i] = u.Name
	}
	return ns
}

// allDown fills out for the case of no live upstream: every agent lists
// every upstream in ring order, with no budget.
func allDown(out map[string]Assignment, agents []string, full *table) {
	n := len(full.names)
	backing := make([]string, len(agents)*n)
	for i, a := range agents {
		var list []string
		if n > 0 {
			list = backing[i*n : (i+1)*n : (i+1)*n]
			start := full.start(a)
			for k := range list {
				list[k] = full.names[full.order[(start+k)%n]]
			}
		}
		out[a] = Assignment{Node: a, Upstreams: list}
	}
}

// placePrimaries returns each agent's primary, an index into full.names.
// parts are the agents' partitions, in node name order; live marks the live
// upstreams of full, nLive of them; lt is the ring of the live upstreams,
// nil when all are live.
//
// Every agent first gets the primary it has when all upstreams are live
// (bounded as if all were). Only the agents whose primary that is and is
// down move: onto the ring of the live upstreams, bounded by the live
// count. So taking an upstream down moves exactly its agents, and bringing
// it back returns them.
func placePrimaries(cfg Config, full, lt *table, live []bool, nLive int, parts []int) []int32 {
	primary := allLivePrimaries(full, parts, bound(cfg.Load, len(parts), len(full.names)))
	if lt == nil {
		return primary
	}
	load := make([]int, len(full.names))
	var moved []int // agents whose all-live primary is down
	for i, p := range primary {
		if live[p] {
			load[p]++
		} else {
			moved = append(moved, i)
		}
	}
	// lt's names are the live names of full, in the same sorted order.
	toFull := make([]int32, 0, nLive)
	for i, ok := range live {
		if ok {
			toFull = append(toFull, int32(i))
		}
	}
	b := bound(cfg.Load, len(parts), nLive)
	for _, i := range moved {
		primary[i] = firstWithRoom(lt.order, lt.startAt(parts[i]), nil, load, b, toFull)
		load[primary[i]]++
	}
	return primary
}

// allLivePrimaries places every agent as if every upstream were live.
func allLivePrimaries(full *table, parts []int, bound int) []int32 {
	load := make([]int, len(full.names))
	primary := make([]int32, len(parts))
	for i, part := range parts {
		primary[i] = firstWithRoom(full.order, full.startAt(part), nil, load, bound, nil)
		load[primary[i]]++
	}
	return primary
}

// bound returns how many of n agents one of m upstreams may take as their
// primary: ceil(load * n / m). Load > 1 makes it at least ceil(n/m), so
// that all agents fit; the max guards against float rounding.
func bound(load float64, n, m int) int {
	return max(int(math.Ceil(load*float64(n)/float64(m))), (n+m-1)/m)
}

// firstWithRoom walks order from start and returns the first member (as an
// index into load, through toFull when it is not nil) that is live (when
// live is not nil) and has fewer than bound agents. If none has, which
// bound rules out, it returns the first live one.
func firstWithRoom(order []int32, start int, live []bool, load []int, bound int, toFull []int32) int32 {
	first := int32(-1)
	for k := range order {
		m := order[(start+k)%len(order)]
		if toFull != nil {
			m = toFull[m]
		}
		if live != nil && !live[m] {
			continue
		}
		if load[m] < bound {
			return m
		}
		if first < 0 {
			first = m
		}
	}
	return first
}

// shareCapacity returns each agent's budget: its primary's capacity
// divided by the number of agents whose primary it is, plus one for the
// first agents (in order) until the remainder is used up. ups is sorted by
// name, as the full table's names are.
func shareCapacity(ups []Upstream, primary []int32) []int64 {
	count := make([]int64, len(ups))
	for _, p := range primary {
		count[p]++
	}
	given := make([]int64, len(ups))
	budgets := make([]int64, len(primary))
	for i, p := range primary {
		c := ups[p].Capacity
		b := c / count[p]
		if given[p] < c%count[p] {
			b++
		}
		given[p]++
		budgets[i] = b
	}
	return budgets
}
