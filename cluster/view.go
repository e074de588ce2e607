package cluster

import (
	"time"

	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/keys"
)

// view is what the member's loop makes of the gossip, checked against the
// members registered in etcd. Only the loop touches it.
type view struct {
	self string
	// seen maps each node the gossip has shown alive to its etcd
	// registration then (the zero regID until etcd showed it). Entries of
	// nodes that are neither alive in the gossip nor registered are
	// dropped, so it holds at most the live members of both.
	seen map[string]regID
	// gone are the nodes seen alive in the gossip that it now holds dead.
	gone map[string]bool
	// down are the upstreams the registered members' votes hold down.
	down []string
}

func newView(self string) *view {
	return &view{self: self, seen: map[string]regID{}, gone: map[string]bool{}}
}

// reset forgets what an earlier gossip showed: a new gossip knows no one
// until it joins, which must not count as everyone dying.
func (v *view) reset() {
	clear(v.seen)
	clear(v.gone)
	v.down = nil
}

// observe takes the gossip's live members and their states, and the
// members registered in etcd, at time now. Only the votes of registered
// members, and this member's own, count in the down rule: a process that
// joins the gossip without registering (or after its registration
// expired) has no say on which upstreams are down.
func (v *view) observe(alive []string, states map[string]gossip.State, live members, now time.Time) {
	// live holds agents and relays: a node is registered as either.
	registered := func(n string) bool {
		_, agent := live[memberID{keys.Agent, n}]
		_, relay := live[memberID{keys.Relay, n}]
		return agent || relay
	}
	isAlive := make(map[string]bool, len(alive))
	for _, n := range alive {
		isAlive[n] = true
		if _, ok := v.seen[n]; !ok {
			v.seen[n] = regID{}
		}
	}
	clear(v.gone)
	for n := range v.seen {
		switch {
		case isAlive[n] || n == v.self:
		case !registered(n):
			delete(v.seen, n) // gone from both: nothing left to tell apart
		default:
			v.gone[n] = true
		}
	}
	votes := make(map[string]gossip.State, len(states))
	for n, s := range states {
		if registered(n) || n == v.self {
			votes[n] = s
		}
	}
	v.down = gossip.Down(votes, now)
}

// withoutGone drops from live the members, agents and relays alike, that
// the gossip holds dead, unless they registered again since (another
// gossip address or start time): a restarted member counts as soon as etcd
// shows it. It records the registration of each live member the gossip
// shows alive. It returns live itself when the gossip holds none dead:
// neither live nor the result may be changed.
func (v *view) withoutGone(live members) members {
	var out members
	if len(v.gone) > 0 {
		out = make(members, len(live))
	}
	for key, mem := range live {
		n := key.Node
		id := mem.id()
		prev, inGossip := v.seen[n]
		switch {
		case !v.gone[n]:
			if inGossip {
				v.seen[n] = id
			}
			if out != nil {
				out[key] = mem
			}
		case !prev.set || prev == id:
			// The process the gossip saw die; its lease has not expired yet.
		default:
			out[key] = mem // registered again: a new process
		}
	}
	if out == nil {
		return live
	}
	return out
}
