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
// an agent or relay without a name, a node name that is both an agent and
// a relay, or negative Fallbacks.
var ErrInvalidInput = errors.New("ring: invalid input")

// ErrNoLiveUpstream reports that no upstream is live: every configured one
// is down, or none is configured; or, when the input has relays, that no
// upstream a relay may use (one that is not a relay) is live. Compute
// returns it together with its assignments: those that have no live
// upstream have budget 0 and list every upstream they may use (none if
// none is configured), so that they keep trying while they spool.
var ErrNoLiveUpstream = errors.New("ring: no live upstream")

// Upstream is one upstream endpoint of the cluster config.
type Upstream struct {
	// Name identifies the upstream in Input.Down and Assignment.Upstreams.
	Name string
	// URL is where the upstream takes imports. Compute does not use it.
	URL string
	// Capacity is what the upstream takes from all its writers together,
	// in bytes per second; 0 means not configured.
	Capacity int64
	// Relay marks a procfleet relay: agents may write to it, relays never
	// are assigned it, so that data never loops between relays.
	Relay bool
}

// Input is what every member knows alike: the cluster config, the live
// agents and relays, and the upstreams the cluster considers down. The
// order of the names in it does not matter.
type Input struct {
	// Ring tunes the hash ring; the zero value means DefaultConfig().
	Ring Config
	// Revision is the config revision the input was taken from. It is
	// informational: Compute does not use it.
	Revision int64
	// Upstreams are the upstreams of the config; the ring's members.
	Upstreams []Upstream
	// Agents are the node names of the live agents, placed on every
	// upstream. Duplicates are ignored.
	Agents []string
	// Relays are the node names of the live relays, placed on the
	// upstreams that are not relays only. Duplicates are ignored; a name
	// must not also be in Agents.
	Relays []string
	// Down names the upstreams the cluster considers down. Names that
	// are not in Upstreams are ignored: the config may have dropped an
	// upstream before the gossip forgets it.
	Down []string
	// Fallbacks is how many live upstreams follow the primary in each
	// member's order, when there are that many it may use.
	Fallbacks int
}

// Assignment is where one agent or relay writes and how fast.
type Assignment struct {
	// Node is the member's node name.
	Node string
	// Upstreams are upstream names, closest first; a relay's hold no
	// relay upstream. When any upstream the member may use is live: the
	// primary (its first live choice), then up to Input.Fallbacks further
	// live upstreams in ring order, then every down upstream in ring
	// order, last, so that the member still has somewhere to try when all
	// its live choices fail. When none is live: every upstream it may use,
	// in ring order.
	Upstreams []string
	// Budget is the member's share of its primary's capacity, in bytes per
	// second. 0 means no budget is known: the primary's capacity is not
	// configured (or too small to give this member a byte), or no
	// upstream the member may use is live.
	Budget int64
	// Weight is the member's weight in the sharing of its primary's
	// capacity: 1 for an agent; for a relay, its share of the agents
	// whose primary is a relay upstream, at least 1 (see Compute).
	Weight int64
}

// Compute assigns every agent and relay of in its upstreams and budget. It
// is a pure function, safe for concurrent use: every member that computes
// it from the same Input, in any order, gets the same map, keyed by node
// name.
//
// Agents are placed on all upstreams with two HashRings with
// DefaultConfig: the full ring of all configured upstreams, and the live
// ring of those not down. An agent whose partition the full ring gives to
// a live upstream keeps that upstream as its primary, so an upstream going
// down or coming back moves only the agents that write to it. An agent
// whose full-ring owner is down takes its owner on the live ring instead,
// where the library has spread the down upstream's partitions over the
// survivors. Either way, an upstream that already has
// ceil(Load * agents / live upstreams) agents (agents that stay are placed
// first, each group in node name order) is passed over for the next one in
// ring order with room: the library bounds partitions per upstream, not
// agents, and this keeps agents per upstream within the same factor.
//
// Relays are placed the same way, but on the two rings of the upstreams
// that are not relays, and bounded by their own count: ceil(Load * relays
// / live non-relay upstreams). Relays never change where agents go: an
// agent's upstreams are the same with or without relays in the input.
//
// An upstream's capacity is shared among the members whose primary it is,
// by weight: each gets capacity * weight / (sum of their weights), rounded
// down, and what rounding leaves goes, one byte per second each, to the
// first of them by node name, so the budgets on an upstream add up to its
// capacity exactly. An agent weighs 1. The agents whose primary is a relay
// upstream write through relays, so the relays weigh them: those agents
// are dealt out to the relays in node name order, as evenly as integers
// allow (the first relays get one more), and each relay weighs its share,
// at least 1. Relays and the agents they carry thus get about the
// bandwidth on non-relay upstreams that the same agents would get writing
// there directly. Relay members and relay upstreams are not matched: the
// ring does not know which relay serves which relay URL.
//
// It returns ErrInvalidInput (and no map) for an invalid input,
// ErrNoLiveUpstream along with the map when no upstream is live (or, with
// relays, no non-relay one), and ErrTooManyMembers for more upstreams than
// DefaultPartitionCount.
func Compute(in Input) (map[string]Assignment, error) {
	ups, err := checkInput(in)
	if err != nil {
		return nil, err
	}
	agents, relays := sortedNames(in.Agents), sortedNames(in.Relays)
	if n, ok := firstCommon(agents, relays); ok {
		return nil, fmt.Errorf("%w: node %q is both an agent and a relay", ErrInvalidInput, n)
	}
	cfg := in.Ring
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	isDown := make(map[string]bool, len(in.Down))
	for _, d := range in.Down {
		isDown[d] = true
	}
	all, err := buildRings(cfg, ups, isDown)
	if err != nil {
		return nil, err
	}
	ag := all.assign(cfg, agents, in.Fallbacks)
	direct := all
	var rl group
	if len(relays) > 0 {
		if direct, err = all.withoutRelays(cfg, isDown); err != nil {
			return nil, err
		}
		rl = direct.assign(cfg, relays, in.Fallbacks)
	}
	out := make(map[string]Assignment, len(agents)+len(relays))
	shareBudgets(out, ups, ag, rl, direct.toAll)
	switch {
	case all.nLive == 0:
		return out, fmt.Errorf("%w: %d upstreams configured, none live (config revision %d)", ErrNoLiveUpstream, len(ups), in.Revision)
	case len(relays) > 0 && direct.nLive == 0:
		return out, fmt.Errorf("%w for relays: %d non-relay upstreams configured, none live (config revision %d)", ErrNoLiveUpstream, len(direct.ups), in.Revision)
	}
	return out, nil
}

// rings are the two tables over one set of upstreams: the full ring of
// all of them, and the live ring of those not down.
type rings struct {
	ups   []Upstream // sorted by name, as full.names
	full  *table
	live  []bool // by index into ups
	nLive int
	lt    *table // nil when all are live (or none is)
	// toAll maps an index into ups to one into the upstreams of the ring
	// it was cut from (withoutRelays); nil when it is that ring.
	toAll []int32
}

// buildRings builds the rings of ups, sorted by name.
func buildRings(cfg Config, ups []Upstream, isDown map[string]bool) (*rings, error) {
	full, err := buildTable(cfg, names(ups))
	if err != nil {
		return nil, err
	}
	r := &rings{ups: ups, full: full, live: make([]bool, len(ups))}
	var liveNames []string
	for i, u := range ups {
		if !isDown[u.Name] {
			r.live[i] = true
			liveNames = append(liveNames, u.Name)
		}
	}
	r.nLive = len(liveNames)
	if r.nLive > 0 && r.nLive < len(ups) {
		if r.lt, err = buildTable(cfg, liveNames); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// withoutRelays returns the rings of r's upstreams that are not relays:
// r itself when none is.
func (r *rings) withoutRelays(cfg Config, isDown map[string]bool) (*rings, error) {
	var direct []Upstream
	var toAll []int32
	for i, u := range r.ups {
		if !u.Relay {
			direct = append(direct, u)
			toAll = append(toAll, int32(i))
		}
	}
	if len(direct) == len(r.ups) {
		return r, nil
	}
	d, err := buildRings(cfg, direct, isDown)
	if err != nil {
		return nil, err
	}
	d.toAll = toAll
	return d, nil
}

// group is the placement of one kind of member on one rings.
type group struct {
	nodes   []string // sorted
	primary []int32  // index into the rings' ups; -1 when none is live
	lists   [][]string
}

// assign places nodes, sorted, on r.
func (r *rings) assign(cfg Config, nodes []string, fallbacks int) group {
	g := group{nodes: nodes, primary: make([]int32, len(nodes)), lists: make([][]string, len(nodes))}
	if r.nLive == 0 {
		r.allDown(g)
		return g
	}
	parts := make([]int, len(nodes)) // the same in every table: all have cfg.PartitionCount
	for i, n := range nodes {
		parts[i] = partition(n, cfg.PartitionCount)
	}
	g.primary = placePrimaries(cfg, r.full, r.lt, r.live, r.nLive, parts)
	nLive := min(1+fallbacks, r.nLive)
	per := nLive + len(r.ups) - r.nLive
	backing := make([]string, len(nodes)*per)
	for i := range nodes {
		list := backing[i*per : (i+1)*per : (i+1)*per]
		fillUpstreams(list, nLive, r.full, r.live, r.full.startAt(parts[i]), g.primary[i])
		g.lists[i] = list
	}
	return g
}

// allDown fills g for the case of no live upstream: every member lists
// every upstream in ring order, and has no primary.
func (r *rings) allDown(g group) {
	n := len(r.full.names)
	backing := make([]string, len(g.nodes)*n)
	for i, node := range g.nodes {
		g.primary[i] = -1
		if n == 0 {
			continue
		}
		list := backing[i*n : (i+1)*n : (i+1)*n]
		start := r.full.start(node)
		for k := range list {
			list[k] = r.full.names[r.full.order[(start+k)%n]]
		}
		g.lists[i] = list
	}
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
	if slices.Contains(in.Agents, "") {
		return nil, fmt.Errorf("%w: an agent has an empty node name", ErrInvalidInput)
	}
	if slices.Contains(in.Relays, "") {
		return nil, fmt.Errorf("%w: a relay has an empty node name", ErrInvalidInput)
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

// sortedNames returns ns sorted, without duplicates, in a new slice.
func sortedNames(ns []string) []string {
	ns = slices.Clone(ns)
	slices.Sort(ns)
	return slices.Compact(ns)
}

// firstCommon returns the first name in both a and b, which are sorted.
func firstCommon(a, b []string) (string, bool) {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := strings.Compare(a[i], b[j]); {
		case c == 0:
			return a[i], true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return "", false
}

func names(ups []Upstream) []string {
	ns := make([]string, len(ups))
	for i, u := range ups {
		ns[i] = u.Name
	}
	return ns
}

// placePrimaries returns each key's primary, an index into full.names.
// parts are the keys' partitions, in node name order; live marks the live
// upstreams of full, nLive of them; lt is the ring of the live upstreams,
// nil when all are live.
//
// Every key first gets the primary it has when all upstreams are live
// (bounded as if all were). Only the keys whose primary that is and is
// down move: onto the ring of the live upstreams, bounded by the live
// count. So taking an upstream down moves exactly its keys, and bringing
// it back returns them.
func placePrimaries(cfg Config, full, lt *table, live []bool, nLive int, parts []int) []int32 {
	primary := allLivePrimaries(full, parts, bound(cfg.Load, len(parts), len(full.names)))
	if lt == nil {
		return primary
	}
	load := make([]int, len(full.names))
	var moved []int // keys whose all-live primary is down
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

// allLivePrimaries places every key as if every upstream were live.
func allLivePrimaries(full *table, parts []int, bound int) []int32 {
	load := make([]int, len(full.names))
	primary := make([]int32, len(parts))
	for i, part := range parts {
		primary[i] = firstWithRoom(full.order, full.startAt(part), nil, load, bound, nil)
		load[primary[i]]++
	}
	return primary
}

// bound returns how many of n keys one of m upstreams may take as their
// primary: ceil(load * n / m). Load > 1 makes it at least ceil(n/m), so
// that all keys fit; the max guards against float rounding.
func bound(load float64, n, m int) int {
	return max(int(math.Ceil(load*float64(n)/float64(m))), (n+m-1)/m)
}

// firstWithRoom walks order from start and returns the first member (as an
// index into load, through toFull when it is not nil) that is live (when
// live is not nil) and has fewer than bound keys. If none has, which
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
