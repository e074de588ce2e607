package ring

import (
	"fmt"
	"testing"
)

// BenchmarkCompute is what every agent pays on each change of membership:
// the whole fleet's assignment.
func BenchmarkCompute(b *testing.B) {
	for _, c := range []struct{ agents, upstreams, down int }{
		{10000, 10, 0},
		{10000, 10, 1},
		{10000, 100, 0},
		{10000, 100, 5},
		{1000, 5, 0},
	} {
		in := fleet(c.upstreams, c.agents)
		for i := range c.down {
			in.Down = append(in.Down, in.Upstreams[i].Name)
		}
		benchCompute(b, fmt.Sprintf("agents=%d/upstreams=%d/down=%d", c.agents, c.upstreams, c.down), in)
	}
	// Relays add two rings (those of the non-relay upstreams) when some
	// upstreams are relays.
	in := relayFleet(10, 3, 10000, 50)
	benchCompute(b, "agents=10000/relays=50/upstreams=10+3/down=0", in)
	in.Down = []string{"vm-0"}
	benchCompute(b, "agents=10000/relays=50/upstreams=10+3/down=1", in)
}

// benchCompute runs Compute on in as sub-benchmark name.
func benchCompute(b *testing.B, name string, in Input) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compute(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSetMembers is the library's cost of placing partitions, which
// grows with the square of the member count.
func BenchmarkSetMembers(b *testing.B) {
	for _, m := range []int{10, 100} {
		names := memberNames("vm-", m)
		b.Run(fmt.Sprintf("members=%d", m), func(b *testing.B) {
			r, err := New(DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := r.SetMembers(names); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
