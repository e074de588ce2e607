package ring

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func fleet(nUp, nAgents int) Input {
	in := Input{Fallbacks: 1}
	for i := range nUp {
		in.Upstreams = append(in.Upstreams, Upstream{Name: fmt.Sprintf("vm-%d", i), Capacity: 10 << 20})
	}
	for i := range nAgents {
		in.Agents = append(in.Agents, fmt.Sprintf("host-%05d.dc1.example.com", i))
	}
	return in
}

// primaries returns each agent's primary and each upstream's agent count.
func primaries(t *testing.T, in Input) (map[string]string, map[string]int) {
	t.Helper()
	out, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	p := make(map[string]string, len(out))
	count := map[string]int{}
	for n, a := range out {
		p[n] = a.Upstreams[0]
		count[a.Upstreams[0]]++
	}
	return p, count
}

func moved(before, after map[string]string) int {
	n := 0
	for a, u := range after {
		if b, ok := before[a]; ok && b != u {
			n++
		}
	}
	return n
}

// TestMovementUpstreamDown takes each upstream down in turn and counts the
// agents whose primary changes: those that were on it must move; all
// others stay.
func TestMovementUpstreamDown(t *testing.T) {
	t.Parallel()
	// f takes down every stride-th upstream and the busiest one.
	f := func(nUp, nAgents, stride int) {
		t.Helper()
		in := fleet(nUp, nAgents)
		before, count := primaries(t, in)
		worst, worstIdeal := 0.0, 0.0
		busiest := in.Upstreams[0]
		for _, u := range in.Upstreams {
			if count[u.Name] > count[busiest.Name] {
				busiest = u
			}
		}
		for i, u := range append(slices.Clone(in.Upstreams), busiest) {
			if i%stride != 0 && i != nUp {
				continue
			}
			in.Down = []string{u.Name}
			after, _ := primaries(t, in)
			m := moved(before, after)
			if m != count[u.Name] {
				t.Errorf("%d upstreams, %d agents, %s down: %d moved, %d were on it", nUp, nAgents, u.Name, m, count[u.Name])
			}
			// The bound: at most 1.2 times the ideal share (the
			// default load factor), give or take the rounding up of the cap.
			if ideal := float64(nAgents) / float64(nUp); float64(m) > math.Ceil(DefaultLoad*ideal) {
				t.Errorf("%d upstreams, %s down: %d agents moved, over %.1f times the ideal share %.0f", nUp, u.Name, m, DefaultLoad, ideal)
			}
			worst = max(worst, float64(m)/float64(count[u.Name]))
			worstIdeal = max(worstIdeal, float64(m)*float64(nUp)/float64(nAgents))
			// Back up: everyone returns.
			in.Down = nil
			if back, _ := primaries(t, in); moved(before, back) != 0 {
				t.Errorf("%d upstreams, %s back up: %d agents not back", nUp, u.Name, moved(before, back))
			}
		}
		t.Logf("%d upstreams, %d agents, one down: moved at most %.2f times the agents that were on it, %.2f times the ideal share",
			nUp, nAgents, worst, worstIdeal)
	}
	f(5, 1000, 1)
	f(3, 1000, 1)
	f(10, 10000, 1)
	f(20, 10000, 1)
	f(100, 10000, 7)
}

// TestMovementAgents adds and removes one agent of 1000.
func TestMovementAgents(t *testing.T) {
	t.Parallel()
	for _, nUp := range []int{2, 5, 10, 20} {
		in := fleet(nUp, 1000)
		before, _ := primaries(t, in)
		for i, a := range []string{"aaa-new", "host-00500.dc1.example.com.new", "zzz-new"} {
			add := in
			add.Agents = append(slices.Clone(in.Agents), a)
			after, _ := primaries(t, add)
			remove := in
			remove.Agents = slices.Delete(slices.Clone(in.Agents), i*499, i*499+1)
			afterRemove, _ := primaries(t, remove)
			// A few percent at most: the new agent's own placement can
			// push one agent of a full upstream to the next, and so on.
			for what, m := range map[string]int{"adding " + a: moved(before, after), "removing one": moved(before, afterRemove)} {
				if m > 20 {
					t.Errorf("%d upstreams, 1000 agents, %s: %d others moved, want at most 2%%", nUp, what, m)
				}
			}
		}
	}
}

// TestMovementUpstreamAdded adds an upstream to the config: the library
// re-places partitions with bounded loads, which moves more than the new
// upstream's share, but far from all.
func TestMovementUpstreamAdded(t *testing.T) {
	t.Parallel()
	for _, nUp := range []int{4, 9, 19} {
		in := fleet(nUp+1, 10000)
		after, count := primaries(t, in)
		in.Upstreams = in.Upstreams[:nUp]
		before, _ := primaries(t, in)
		newName := fmt.Sprintf("vm-%d", nUp)
		m := moved(before, after)
		t.Logf("%d -> %d upstreams, 10000 agents: %d moved, %d to the new one (%.2f times)", nUp, nUp+1, m, count[newName], float64(m)/float64(count[newName]))
		if m < count[newName] || m > 10000/2 {
			t.Errorf("%d -> %d upstreams: %d moved, %d onto the new one", nUp, nUp+1, m, count[newName])
		}
	}
}

// TestBalance checks that no live upstream is the primary of more than
// ceil(Load * average) agents, with and without upstreams down.
func TestBalance(t *testing.T) {
	t.Parallel()
	f := func(nUp, nAgents, nDown int) {
		t.Helper()
		in := fleet(nUp, nAgents)
		for i := range nDown {
			in.Down = append(in.Down, in.Upstreams[i*nUp/max(nDown, 1)].Name)
		}
		_, count := primaries(t, in)
		nLive := nUp - nDown
		limit := int(math.Ceil(DefaultLoad * float64(nAgents) / float64(nLive)))
		most := 0
		for u, c := range count {
			if slices.Contains(in.Down, u) {
				t.Errorf("%d upstreams, %d down: %s is down and has %d agents", nUp, nDown, u, c)
			}
			most = max(most, c)
		}
		if most > limit {
			t.Errorf("%d upstreams (%d down), %d agents: an upstream has %d agents, bound %d", nUp, nDown, nAgents, most, limit)
		}
		t.Logf("%d upstreams (%d down), %d agents: most %d, %.3f times the average", nUp, nDown, nAgents, most, float64(most)*float64(nLive)/float64(nAgents))
	}
	f(3, 10, 0)
	f(5, 1000, 0)
	f(5, 1000, 1)
	f(10, 10000, 0)
	f(10, 10000, 3)
	f(100, 10000, 0)
	f(100, 10000, 10)
	f(7, 3, 0)
}

// relayFleet is fleet with nRelayUp relay upstreams and nRelays relays
// added.
func relayFleet(nUp, nRelayUp, nAgents, nRelays int) Input {
	in := fleet(nUp, nAgents)
	for i := range nRelayUp {
		in.Upstreams = append(in.Upstreams, Upstream{Name: fmt.Sprintf("relay-up-%d", i), Capacity: 50 << 20, Relay: true})
	}
	for i := range nRelays {
		in.Relays = append(in.Relays, fmt.Sprintf("relay-%03d.dc1.example.com", i))
	}
	return in
}

// TestMovementRelays takes each upstream down in turn: a non-relay one
// moves exactly the relays (and agents) that were on it, a relay upstream
// moves no relay; relays stay within the load bound among themselves.
func TestMovementRelays(t *testing.T) {
	t.Parallel()
	in := relayFleet(10, 3, 1000, 50)
	before, count := primaries(t, in)
	relayCount := map[string]int{}
	for _, r := range in.Relays {
		relayCount[before[r]]++
	}
	limit := int(math.Ceil(DefaultLoad * 50 / 10))
	for u, c := range relayCount {
		if c > limit {
			t.Errorf("%s is the primary of %d relays, bound %d", u, c, limit)
		}
	}
	for _, u := range in.Upstreams {
		in.Down = []string{u.Name}
		after, _ := primaries(t, in)
		movedRelays := 0
		for _, r := range in.Relays {
			if before[r] != after[r] {
				movedRelays++
			}
		}
		if movedRelays != relayCount[u.Name] {
			t.Errorf("%s down: %d relays moved, %d were on it", u.Name, movedRelays, relayCount[u.Name])
		}
		if m := moved(before, after); m != count[u.Name] {
			t.Errorf("%s down: %d members moved, %d were on it", u.Name, m, count[u.Name])
		}
	}
}
