package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestDown(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fresh := now.Add(-5 * time.Second)
	stale := now.Add(-MaxOpinionAge - time.Millisecond)
	// st builds states from "node:endpoint=up|down,..." views, all fresh.
	st := func(views ...map[string]bool) map[string]State {
		out := make(map[string]State)
		for i, v := range views {
			name := fmt.Sprintf("n%d", i)
			out[name] = State{Node: name, Kind: KindAgent, Endpoints: v, Formed: fresh}
		}
		return out
	}
	with := func(states map[string]State, node string, updated time.Time) map[string]State {
		s := states[node]
		s.Formed = updated
		states[node] = s
		return states
	}
	up, down := true, false
	tests := []struct {
		name   string
		states map[string]State
		want   []string
	}{
		{"no members", nil, nil},
		{"no opinions", st(nil, map[string]bool{}), nil},
		{"lone opinion unhealthy", st(map[string]bool{"a": down}, nil, nil), []string{"a"}},
		{"lone opinion healthy", st(map[string]bool{"a": up}), nil},
		{"one of two unhealthy", st(map[string]bool{"a": down}, map[string]bool{"a": up}), nil},
		{"two of two unhealthy", st(map[string]bool{"a": down}, map[string]bool{"a": down}), []string{"a"}},
		{"one of three unhealthy", st(map[string]bool{"a": down}, map[string]bool{"a": up}, map[string]bool{"a": up}), nil},
		{"two of three unhealthy", st(map[string]bool{"a": down}, map[string]bool{"a": down}, map[string]bool{"a": up}), []string{"a"}},
		{"two of four unhealthy: no strict majority", st(
			map[string]bool{"a": down}, map[string]bool{"a": down}, map[string]bool{"a": up}, map[string]bool{"a": up}), nil},
		{"three of five unhealthy", st(
			map[string]bool{"a": down}, map[string]bool{"a": down}, map[string]bool{"a": down},
			map[string]bool{"a": up}, map[string]bool{"a": up}), []string{"a"}},
		{"members without an opinion do not count", st(map[string]bool{"a": down}, map[string]bool{"a": down}, nil, nil, nil), []string{"a"}},
		{"per endpoint, sorted", st(
			map[string]bool{"b": down, "a": down, "c": up},
			map[string]bool{"b": down, "a": down, "c": down},
			map[string]bool{"a": down}), []string{"a", "b"}},
		{"stale opinion ignored", with(st(map[string]bool{"a": down}, map[string]bool{"a": up}), "n1", stale), []string{"a"}},
		{"stale unhealthy ignored", with(st(map[string]bool{"a": down}), "n0", stale), nil},
		{"exactly MaxOpinionAge counts", with(st(map[string]bool{"a": down}), "n0", now.Add(-MaxOpinionAge)), []string{"a"}},
		{"far future ignored", with(st(map[string]bool{"a": down}), "n0", now.Add(MaxOpinionAge+time.Second)), nil},
		{"zero Formed ignored", with(st(map[string]bool{"a": down}), "n0", time.Time{}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Down(tt.states, now)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Down = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestDownDeterministic checks that map order does not show.
func TestDownDeterministic(t *testing.T) {
	now := time.Now()
	states := make(map[string]State)
	for i := range 50 {
		eps := make(map[string]bool)
		for j := range 20 {
			eps[fmt.Sprintf("vm-%02d", j)] = (i+j)%3 != 0
		}
		states[fmt.Sprint(i)] = State{Endpoints: eps, Formed: now}
	}
	first := Down(states, now)
	for range 20 {
		if got := Down(states, now); !slices.Equal(got, first) {
			t.Fatalf("Down = %v, then %v", first, got)
		}
	}
	if !slices.IsSorted(first) {
		t.Errorf("Down = %v; want sorted", first)
	}
}

func BenchmarkDown(b *testing.B) {
	now := time.Now()
	states := make(map[string]State)
	for i := range 1000 {
		eps := make(map[string]bool)
		for j := range 3 {
			eps[fmt.Sprintf("vm-%02d", (i+j)%100)] = (i+j)%7 != 0
		}
		states[fmt.Sprint(i)] = State{Endpoints: eps, Formed: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		Down(states, now)
	}
}
