package ring

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomInput draws an input: up to 12 upstreams, some down, some relays,
// up to 300 agents and, two times in three, up to 30 relays (some names
// repeated), capacities from 0 up.
func randomInput(r *rand.Rand) Input {
	in := Input{Revision: r.Int64N(100), Fallbacks: r.IntN(4)}
	for i := range r.IntN(13) {
		u := Upstream{Name: fmt.Sprintf("up-%d", i), Capacity: r.Int64N(1 << 20), Relay: r.IntN(4) == 0}
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
	if r.IntN(3) > 0 {
		for range r.IntN(31) {
			in.Relays = append(in.Relays, fmt.Sprintf("relay-%d", r.IntN(40)))
		}
	}
	return in
}

func shuffled(r *rand.Rand, in Input) Input {
	shuffle := func(s []string) []string {
		s = slices.Clone(s)
		r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	in.Upstreams = slices.Clone(in.Upstreams)
	r.Shuffle(len(in.Upstreams), func(i, j int) { in.Upstreams[i], in.Upstreams[j] = in.Upstreams[j], in.Upstreams[i] })
	in.Agents, in.Relays, in.Down = shuffle(in.Agents), shuffle(in.Relays), shuffle(in.Down)
	return in
}

func TestComputeProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	withRelays := 0
	for i := range 400 {
		in := randomInput(r)
		name := fmt.Sprintf("input %d", i)
		out, err := Compute(in)
		checkInvariants(t, name, in, out, err)
		again, err2 := Compute(shuffled(r, in))
		if !reflect.DeepEqual(out, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("%s: Compute differs after shuffling the input", name)
		}
		if len(in.Relays) > 0 {
			withRelays++
			checkAgentsIgnoreRelays(t, name, in, out)
		}
	}
	if withRelays < 100 {
		t.Fatalf("only %d inputs with relays", withRelays)
	}
}

// checkAgentsIgnoreRelays fails unless the agents of out (computed for
// in) have the upstreams they have without relays, and the same budgets
// wherever no relay shares their primary.
func checkAgentsIgnoreRelays(t *testing.T, name string, in Input, out map[string]Assignment) {
	t.Helper()
	alone := in
	alone.Relays = nil
	base, _ := Compute(alone)
	relayPrimary := map[string]bool{}
	for _, r := range in.Relays {
		if as := out[r]; len(as.Upstreams) > 0 {
			relayPrimary[as.Upstreams[0]] = true
		}
	}
	for a, want := range base {
		got := out[a]
		if !slices.Equal(got.Upstreams, want.Upstreams) {
			t.Fatalf("%s: agent %s: upstreams %q with relays, %q without", name, a, got.Upstreams, want.Upstreams)
		}
		if len(want.Upstreams) > 0 && !relayPrimary[want.Upstreams[0]] && got.Budget != want.Budget {
			t.Fatalf("%s: agent %s: budget %d with relays, %d without, and no relay on %s", name, a, got.Budget, want.Budget, want.Upstreams[0])
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
	byName := map[string]Upstream{}
	var nLive, nDirect, nLiveDirect int
	for _, u := range in.Upstreams {
		byName[u.Name] = u
		if !down[u.Name] {
			nLive++
		}
		if !u.Relay {
			nDirect++
			if !down[u.Name] {
				nLiveDirect++
			}
		}
	}
	agents := slices.Compact(slices.Sorted(slices.Values(in.Agents)))
	relays := slices.Compact(slices.Sorted(slices.Values(in.Relays)))
	noLive := nLive == 0 || (len(relays) > 0 && nLiveDirect == 0)
	if noLive != errors.Is(err, ErrNoLiveUpstream) || (!noLive && err != nil) {
		t.Fatalf("%s: %d live upstreams, %d of them not relays, %d relays: error %v", name, nLive, nLiveDirect, len(relays), err)
	}
	if len(out) != len(agents)+len(relays) {
		t.Fatalf("%s: %d assignments for %d agents and %d relays", name, len(out), len(agents), len(relays))
	}
	hasLive := map[string]bool{} // by node
	carried := 0                 // agents whose primary is a relay upstream
	for _, a := range agents {
		as, ok := out[a]
		if !ok || as.Node != a {
			t.Fatalf("%s: agent %s: assignment %+v", name, a, as)
		}
		checkAssignment(t, name, as, in.Fallbacks, down, len(in.Upstreams), nLive)
		for _, u := range as.Upstreams {
			if _, ok := byName[u]; !ok {
				t.Fatalf("%s: %s: upstream %q is not configured", name, a, u)
			}
		}
		if as.Weight != 1 {
			t.Fatalf("%s: agent %s weighs %d, want 1", name, a, as.Weight)
		}
		hasLive[a] = nLive > 0
		if nLive > 0 && byName[as.Upstreams[0]].Relay {
			carried++
		}
	}
	for i, r := range relays {
		as, ok := out[r]
		if !ok || as.Node != r {
			t.Fatalf("%s: relay %s: assignment %+v", name, r, as)
		}
		checkAssignment(t, name, as, in.Fallbacks, down, nDirect, nLiveDirect)
		for _, u := range as.Upstreams {
			if up, ok := byName[u]; !ok || up.Relay {
				t.Fatalf("%s: relay %s: upstream %q is a relay or not configured (%q)", name, r, u, as.Upstreams)
			}
		}
		want := int64(carried / len(relays))
		if i < carried%len(relays) {
			want++
		}
		if want = max(want, 1); as.Weight != want {
			t.Fatalf("%s: relay %s (%d of %d) weighs %d; %d agents on relay upstreams, want %d", name, r, i, len(relays), as.Weight, carried, want)
		}
		hasLive[r] = nLiveDirect > 0
	}
	checkBudgets(t, name, byName, slices.Sorted(slices.Values(append(slices.Clone(agents), relays...))), out, hasLive)
}

// checkBudgets fails unless the budgets of out follow the rule of Compute
// exactly: on each primary, capacity * weight / total weight rounded down,
// one more for the first members by name until the capacity is used up.
func checkBudgets(t *testing.T, name string, byName map[string]Upstream, nodes []string, out map[string]Assignment, hasLive map[string]bool) {
	t.Helper()
	on := map[string][]Assignment{} // by primary, in node name order
	for _, n := range nodes {
		as := out[n]
		if !hasLive[n] {
			if as.Budget != 0 {
				t.Fatalf("%s: %s has no live upstream and budget %d", name, n, as.Budget)
			}
			continue
		}
		on[as.Upstreams[0]] = append(on[as.Upstreams[0]], as)
	}
	for u, as := range on {
		capacity := byName[u].Capacity
		var total, sum int64
		for _, a := range as {
			total += a.Weight
		}
		floors := make([]int64, len(as))
		for i, a := range as {
			var f big.Int
			f.Mul(big.NewInt(capacity), big.NewInt(a.Weight)).Quo(&f, big.NewInt(total))
			floors[i] = f.Int64()
			sum += floors[i]
		}
		left := capacity - sum
		var got int64
		for i, a := range as {
			want := floors[i]
			if int64(i) < left {
				want++
			}
			if a.Budget != want {
				t.Fatalf("%s: %s on %s (capacity %d, weight %d of %d): budget %d, want %d", name, a.Node, u, capacity, a.Weight, total, a.Budget, want)
			}
			got += a.Budget
		}
		if got != capacity {
			t.Fatalf("%s: budgets on %s add up to %d, capacity %d", name, u, got, capacity)
		}
	}
}

// checkAssignment checks as for a member that may use nUp upstreams, nLive
// of them live.
func checkAssignment(t *testing.T, name string, as Assignment, fallbacks int, down map[string]bool, nUp, nLive int) {
	t.Helper()
	if got := len(slices.Compact(slices.Sorted(slices.Values(as.Upstreams)))); got != len(as.Upstreams) {
		t.Fatalf("%s: %s: duplicate upstreams in %q", name, as.Node, as.Upstreams)
	}
	if nLive == 0 {
		if len(as.Upstreams) != nUp || as.Budget != 0 {
			t.Fatalf("%s: %s: nothing live, got %q budget %d", name, as.Node, as.Upstreams, as.Budget)
		}
		return
	}
	wantLive := min(1+fallbacks, nLive)
	nDown := nUp - nLive
	if len(as.Upstreams) != wantLive+nDown {
		t.Fatalf("%s: %s: %q, want %d live then %d down", name, as.Node, as.Upstreams, wantLive, nDown)
	}
	for i, u := range as.Upstreams {
		if down[u] != (i >= wantLive) {
			t.Fatalf("%s: %s: %q, want %d live then %d down", name, as.Node, as.Upstreams, wantLive, nDown)
		}
	}
}
