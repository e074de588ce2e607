package ring

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomInput draws an input: up to 12 upstreams, some down, up to 300
// agents (some repeated), capacities from 0 up.
func randomInput(r *rand.Rand) Input {
	in := Input{Revision: r.Int64N(100), Fallbacks: r.IntN(4)}
	for i := range r.IntN(13) {
		u := Upstream{Name: fmt.Sprintf("up-%d", i), Capacity: r.Int64N(1 << 20)}
		if r.IntN(8) == 0 {
			u.Capacity = r.Int64N(5)
		}
		in.Upstreams = append(in.Upstreams, u)
		if r.IntN(4) == 0 {
			in.Down = append(in.Down, u.Name)
		}
	}
	if r.IntN(10) == 0 {
		in.Down = append(in.Down, "not-configured")
	}
	for range r.IntN(300) {
		in.Agents = append(in.Agents, fmt.Sprintf("host-%d", r.IntN(400)))
	}
	return in
}

func shuffled(r *rand.Rand, in Input) Input {
	in.Upstreams = slices.Clone(in.Upstreams)
	in.Agents = slices.Clone(in.Agents)
	in.Down = slices.Clone(in.Down)
	r.Shuffle(len(in.Upstreams), func(i, j int) { in.Upstreams[i], in.Upstreams[j] = in.Upstreams[j], in.Upstreams[i] })
	r.Shuffle(len(in.Agents), func(i, j int) { in.Agents[i], in.Agents[j] = in.Agents[j], in.Agents[i] })
	r.Shuffle(len(in.Down), func(i, j int) { in.Down[i], in.Down[j] = in.Down[j], in.Down[i] })
	return in
}

func TestComputeProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		in := randomInput(r)
		out, err := Compute(in)
		checkInvariants(t, fmt.Sprintf("input %d", i), in, out, err)
		again, err2 := Compute(shuffled(r, in))
		if !reflect.DeepEqual(out, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("input %d: Compute differs after shuffling the input", i)
		}
	}
}

// checkInvariants fails unless out, err is a valid answer for in.
func checkInvariants(t *testing.T, name string, in Input, out map[string]Assignment, err error) {
	t.Helper()
	down := map[string]bool{}
	for _, d := range in.Down {
		down[d] = true
	}
	capacity := map[string]int64{}
	nLive := 0
	for _, u := range in.Upstreams {
		capacity[u.Name] = u.Capacity
		if !down[u.Name] {
			nLive++
		}
	}
	if (nLive == 0) != errors.Is(err, ErrNoLiveUpstream) || (nLive > 0 && err != nil) {
		t.Fatalf("%s: %d live upstreams, error %v", name, nLive, err)
	}
	agents := slices.Compact(slices.Sorted(slices.Values(in.Agents)))
	if len(out) != len(agents) {
		t.Fatalf("%s: %d assignments for %d agents", name, len(out), len(agents))
	}
	used := map[string]int64{}
	for _, a := range agents {
		as, ok := out[a]
		if !ok || as.Node != a {
			t.Fatalf("%s: agent %s: assignment %+v", name, a, as)
		}
		checkAssignment(t, name, in, as, down, nLive)
		for _, u := range as.Upstreams {
			if _, ok := capacity[u]; !ok {
				t.Fatalf("%s: %s: upstream %q is not configured", name, a, u)
			}
		}
		if nLive > 0 {
			used[as.Upstreams[0]] += as.Budget
		}
	}
	for u, b := range used {
		if b > capacity[u] {
			t.Fatalf("%s: budgets on %s add up to %d, capacity %d", name, u, b, capacity[u])
		}
	}
}

func checkAssignment(t *testing.T, name string, in Input, as Assignment, down map[string]bool, nLive int) {
	t.Helper()
	if got := len(slices.Compact(slices.Sorted(slices.Values(as.Upstreams)))); got != len(as.Upstreams) {
		t.Fatalf("%s: %s: duplicate upstreams in %q", name, as.Node, as.Upstreams)
	}
	nDown := len(in.Upstreams) - nLive
	if nLive == 0 {
		if len(as.Upstreams) != len(in.Upstreams) || as.Budget != 0 {
			t.Fatalf("%s: %s: nothing live, got %q budget %d", name, as.Node, as.Upstreams, as.Budget)
		}
		return
	}
	wantLive := min(1+in.Fallbacks, nLive)
	if len(as.Upstreams) != wantLive+nDown {
		t.Fatalf("%s: %s: %q, want %d live then %d down", name, as.Node, as.Upstreams, wantLive, nDown)
	}
	for i, u := range as.Upstreams {
		if down[u] != (i >= wantLive) {
			t.Fatalf("%s: %s: %q, want %d live then %d down", name, as.Node, as.Upstreams, wantLive, nDown)
		}
	}
}
