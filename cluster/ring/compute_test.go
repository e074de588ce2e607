package ring

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func ups(names ...string) []Upstream {
	us := make([]Upstream, len(names))
	for i, n := range names {
		us[i] = Upstream{Name: n, URL: "http://" + n, Capacity: 1000}
	}
	return us
}

func TestComputeInvalid(t *testing.T) {
	f := func(name string, in Input) {
		t.Helper()
		out, err := Compute(in)
		if !errors.Is(err, ErrInvalidInput) || out != nil {
			t.Errorf("%s: Compute = %v, %v; want nil, ErrInvalidInput", name, out, err)
		}
	}
	f("negative fallbacks", Input{Upstreams: ups("a"), Agents: []string{"h"}, Fallbacks: -1})
	f("empty agent", Input{Upstreams: ups("a"), Agents: []string{"h", ""}})
	f("empty upstream name", Input{Upstreams: ups("a", ""), Agents: []string{"h"}})
	f("duplicate upstream", Input{Upstreams: ups("a", "b", "a"), Agents: []string{"h"}})
	f("negative capacity", Input{Upstreams: []Upstream{{Name: "a", Capacity: -1}}, Agents: []string{"h"}})
	f("empty relay", Input{Upstreams: ups("a"), Agents: []string{"h"}, Relays: []string{"r", ""}})
	f("agent and relay", Input{Upstreams: ups("a"), Agents: []string{"h", "x"}, Relays: []string{"x", "r"}})
}

func TestComputeCases(t *testing.T) {
	type want struct {
		upstreams map[string][]string // by node; nil: not checked
		budgets   map[string]int64
		weights   map[string]int64 // by node; nil: not checked
		noLive    bool
	}
	f := func(name string, in Input, w want) {
		t.Helper()
		out, err := Compute(in)
		if w.noLive != errors.Is(err, ErrNoLiveUpstream) || (!w.noLive && err != nil) {
			t.Errorf("%s: error %v, want ErrNoLiveUpstream=%v", name, err, w.noLive)
		}
		if len(out) != len(w.budgets) {
			t.Errorf("%s: %d assignments, want %d", name, len(out), len(w.budgets))
		}
		for node, b := range w.budgets {
			a, ok := out[node]
			if !ok || a.Node != node || a.Budget != b {
				t.Errorf("%s: %s: %+v, want budget %d", name, node, a, b)
			}
		}
		for node, wt := range w.weights {
			if got := out[node].Weight; got != wt {
				t.Errorf("%s: %s: weight %d, want %d", name, node, got, wt)
			}
		}
		for node, us := range w.upstreams {
			if got := out[node].Upstreams; !slices.Equal(got, us) {
				t.Errorf("%s: %s: upstreams %q, want %q", name, node, got, us)
			}
		}
	}
	f("no agents", Input{Upstreams: ups("a")}, want{budgets: map[string]int64{}})
	f("no upstreams", Input{Agents: []string{"h1", "h2"}}, want{
		upstreams: map[string][]string{"h1": nil}, budgets: map[string]int64{"h1": 0, "h2": 0}, noLive: true})
	f("one upstream, remainder to the first by name", Input{
		Upstreams: []Upstream{{Name: "a", Capacity: 11}}, Agents: []string{"h3", "h1", "h2", "h1"}, Fallbacks: 2,
	}, want{
		upstreams: map[string][]string{"h1": {"a"}, "h2": {"a"}, "h3": {"a"}},
		budgets:   map[string]int64{"h1": 4, "h2": 4, "h3": 3},
	})
	f("capacity smaller than agents", Input{
		Upstreams: []Upstream{{Name: "a", Capacity: 1}}, Agents: []string{"h1", "h2"},
	}, want{budgets: map[string]int64{"h1": 1, "h2": 0}})
	f("capacity not configured", Input{
		Upstreams: []Upstream{{Name: "a"}}, Agents: []string{"h1"},
	}, want{budgets: map[string]int64{"h1": 0}})
	f("down upstream listed last", Input{
		Upstreams: ups("a", "b"), Agents: []string{"h1"}, Down: []string{"a", "gone"}, Fallbacks: 1,
	}, want{
		upstreams: map[string][]string{"h1": {"b", "a"}},
		budgets:   map[string]int64{"h1": 1000},
	})
	f("all down", Input{
		Upstreams: ups("a", "b"), Agents: []string{"h1"}, Down: []string{"b", "a"},
	}, want{budgets: map[string]int64{"h1": 0}, noLive: true})

	relayUp := Upstream{Name: "r", URL: "http://relay:8480/api/v1/import/prometheus", Capacity: 10, Relay: true}
	f("a relay never gets a relay upstream", Input{
		Upstreams: []Upstream{relayUp, {Name: "vm", Capacity: 1000}}, Relays: []string{"x"}, Fallbacks: 1,
	}, want{
		upstreams: map[string][]string{"x": {"vm"}},
		budgets:   map[string]int64{"x": 1000},
		weights:   map[string]int64{"x": 1},
	})
	f("relays and agents share by weight, remainder by name", Input{
		Upstreams: []Upstream{{Name: "vm", Capacity: 10}}, Agents: []string{"h2", "h1"}, Relays: []string{"x1"},
	}, want{
		budgets: map[string]int64{"h1": 4, "h2": 3, "x1": 3},
		weights: map[string]int64{"h1": 1, "h2": 1, "x1": 1},
	})
	f("relays with the only non-relay upstream down", Input{
		Upstreams: []Upstream{relayUp, {Name: "vm", Capacity: 1000}}, Agents: []string{"h1"}, Relays: []string{"x"},
		Down: []string{"vm"}, Fallbacks: 1,
	}, want{
		upstreams: map[string][]string{"h1": {"r", "vm"}, "x": {"vm"}},
		budgets:   map[string]int64{"h1": 10, "x": 0},
		weights:   map[string]int64{"h1": 1, "x": 1}, // h1 is carried, by the only relay
		noLive:    true,
	})
	f("relays and only relay upstreams", Input{
		Upstreams: []Upstream{relayUp}, Agents: []string{"h1", "h2", "h3"}, Relays: []string{"y", "x"},
	}, want{
		upstreams: map[string][]string{"h1": {"r"}, "x": nil, "y": nil},
		budgets:   map[string]int64{"h1": 4, "h2": 3, "h3": 3, "x": 0, "y": 0},
		weights:   map[string]int64{"x": 2, "y": 1},
		noLive:    true,
	})
	f("relays without agents", Input{
		Upstreams: []Upstream{relayUp, {Name: "vm", Capacity: 7}}, Relays: []string{"x", "y", "x"},
	}, want{
		budgets: map[string]int64{"x": 4, "y": 3},
		weights: map[string]int64{"x": 1, "y": 1},
	})
}

func TestRelayWeights(t *testing.T) {
	f := func(n, agents int, want ...int64) {
		t.Helper()
		if got := relayWeights(n, agents); !slices.Equal(got, want) {
			t.Errorf("relayWeights(%d, %d) = %v, want %v", n, agents, got, want)
		}
	}
	f(0, 5)
	f(1, 0, 1)
	f(1, 5, 5)
	f(3, 7, 3, 2, 2)
	f(3, 2, 1, 1, 1)
	f(4, 9, 3, 2, 2, 2)
}

func TestMulDiv(t *testing.T) {
	f := func(a, b, c, want int64) {
		t.Helper()
		if got := mulDiv(a, b, c); got != want {
			t.Errorf("mulDiv(%d, %d, %d) = %d, want %d", a, b, c, got, want)
		}
	}
	f(0, 1, 1, 0)
	f(10, 1, 3, 3)
	f(10, 2, 3, 6)
	f(math.MaxInt64, 1, 1, math.MaxInt64)
	f(math.MaxInt64, 3, 4, math.MaxInt64/4*3+2) // (2^63-1)*3/4 = 6917529027641081855.25
	f(math.MaxInt64, 1<<40, 1<<41, math.MaxInt64/2)
}

func TestComputeTooManyUpstreams(t *testing.T) {
	in := Input{Agents: []string{"h"}}
	for _, n := range memberNames("vm-", DefaultPartitionCount+1) {
		in.Upstreams = append(in.Upstreams, Upstream{Name: n})
	}
	if _, err := Compute(in); !errors.Is(err, ErrTooManyMembers) {
		t.Errorf("Compute with %d upstreams = %v, want ErrTooManyMembers", len(in.Upstreams), err)
	}
}
