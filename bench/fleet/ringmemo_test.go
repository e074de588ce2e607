package main

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/procfleet/procfleet/cluster/ring"
)

func memoInput(agents int) ring.Input {
	in := ring.Input{Fallbacks: 1}
	for i := range 5 {
		in.Upstreams = append(in.Upstreams, ring.Upstream{Name: fmt.Sprintf("u%d", i), URL: fmt.Sprintf("http://u%d", i)})
	}
	for i := range agents {
		in.Agents = append(in.Agents, fmt.Sprintf("a%03d", i))
	}
	return in
}

// TestRingMemo: the memo hands out ring.Compute's own result, shares it
// among inputs that differ only in order, and computes again for any input
// that differs in what Compute reads.
func TestRingMemo(t *testing.T) {
	var m ringMemo
	in := memoInput(50)
	want, err := ring.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.compute(in)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("memo = %v, %v; want ring.Compute's result", got, err)
	}
	shuffled := in
	shuffled.Agents = slices.Clone(in.Agents)
	slices.Reverse(shuffled.Agents)
	if _, err := m.compute(shuffled); err != nil {
		t.Fatal(err)
	}
	if c, s := m.computed.Load(), m.shared.Load(); c != 1 || s != 1 {
		t.Fatalf("computed %d, shared %d; want 1 and 1 (same members in another order)", c, s)
	}
	variants := []func(*ring.Input){
		func(in *ring.Input) { in.Agents = in.Agents[1:] },
		func(in *ring.Input) { in.Down = []string{"u1"} },
		func(in *ring.Input) { in.Fallbacks = 2 },
		func(in *ring.Input) { in.Upstreams[2].Capacity = 1 << 20 },
		func(in *ring.Input) { in.Relays = []string{"r1"} },
	}
	for i, change := range variants {
		v := memoInput(50)
		change(&v)
		want, err := ring.Compute(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.compute(v)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("variant %d: memo result differs from ring.Compute's", i)
		}
		if c := m.computed.Load(); c != int64(i+2) {
			t.Fatalf("variant %d: computed %d; want %d (a changed input is computed again)", i, c, i+2)
		}
	}
}
