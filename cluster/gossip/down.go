package gossip

import (
	"slices"
	"time"
)

// MaxOpinionAge is how old a member's view of the endpoints may be and
// still count in Down. Members refresh their state every
// Config.RefreshInterval (10 s by default), so only a member that stopped
// updating loses its say. Ages are measured on each member's own clock
// (see State.Formed), so members' clocks need not agree.
const MaxOpinionAge = 30 * time.Second

// Down returns, sorted, the upstreams that the cluster considers down,
// given the states of its live members (States) at time now.
//
// The rule, for each upstream named in any state:
//
//  1. The opinions on it are those of the states that name it in
//     Endpoints and whose Formed is within MaxOpinionAge of now (either
//     side). Formed is on the clock of the member that holds the states,
//     as now is: a sender's clock, however far off, does not count. A
//     member that does not name an upstream has no opinion on it.
//  2. It is down when a strict majority of its opinions say unhealthy and
//     at least min(2, opinions) of them do.
//
// So a lone member's view decides only when it is the only opinion; with
// two opinions both must say unhealthy; with more, a strict majority of
// them (two against one, three against two, ...). An upstream with no
// fresh opinion is not down. A single failed send never makes an upstream
// down: the shipper marks an endpoint unhealthy only after consecutive
// failures, and then one member is outvoted by the others that can still
// reach it.
//
// Down is a pure function: members that hold the same states and the same
// now compute the same answer. Near the MaxOpinionAge boundary members that
// received a state at slightly different times may briefly disagree, which
// is why members refresh their state well inside it.
func Down(states map[string]State, now time.Time) []string {
	type tally struct{ opinions, unhealthy int }
	tallies := make(map[string]*tally)
	for _, s := range states {
		age := now.Sub(s.Formed)
		if s.Formed.IsZero() || age > MaxOpinionAge || age < -MaxOpinionAge {
			continue
		}
		for name, healthy := range s.Endpoints {
			t := tallies[name]
			if t == nil {
				t = &tally{}
				tallies[name] = t
			}
			t.opinions++
			if !healthy {
				t.unhealthy++
			}
		}
	}
	var down []string
	for name, t := range tallies {
		if 2*t.unhealthy > t.opinions && t.unhealthy >= min(2, t.opinions) {
			down = append(down, name)
		}
	}
	slices.Sort(down)
	return down
}
