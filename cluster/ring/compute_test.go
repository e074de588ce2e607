package ring

import (
	"errors"
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
}

func TestComputeCases(t *testing.T) {
	type want struct {
		upstreams map[string][]string // by node; nil: not checked
		budgets   map[string]int64
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
