package ring_test

import (
	"errors"
	"fmt"

	"github.com/procfleet/procfleet/cluster/ring"
)

// Every agent computes the same assignments from the same input. Each
// lists its primary, then Fallbacks further live upstreams, then the down
// ones; its budget, in bytes per second, is its share of its primary's
// capacity (vm-a's 10 MiB/s split two ways). When vm-b goes down only
// web-1 moves, and vm-a's capacity is split three ways, the odd byte to
// db-1. With nothing live, each agent lists every upstream, has no
// budget, and Compute says so with ErrNoLiveUpstream.
func Example() {
	in := ring.Input{
		Revision: 7,
		Upstreams: []ring.Upstream{
			{Name: "vm-a", URL: "http://10.0.0.1:8428/api/v1/import/prometheus", Capacity: 10 << 20},
			{Name: "vm-b", URL: "http://10.0.0.2:8428/api/v1/import/prometheus", Capacity: 10 << 20},
			{Name: "vm-c", URL: "http://10.0.0.3:8428/api/v1/import/prometheus", Capacity: 5 << 20},
		},
		Agents:    []string{"web-1", "web-2", "web-3", "db-1", "db-2"},
		Fallbacks: 1,
	}
	print := func(in ring.Input) {
		as, err := ring.Compute(in)
		if err != nil && !errors.Is(err, ring.ErrNoLiveUpstream) {
			fmt.Println(err)
			return
		}
		for _, node := range []string{"db-1", "db-2", "web-1", "web-2", "web-3"} {
			a := as[node]
			fmt.Printf("%s %v %d\n", a.Node, a.Upstreams, a.Budget)
		}
		if err != nil {
			fmt.Println(err)
		}
	}
	print(in)

	fmt.Println("vm-b down:")
	in.Down = []string{"vm-b"}
	print(in)

	fmt.Println("all down:")
	in.Down = []string{"vm-a", "vm-b", "vm-c"}
	print(in)
	// Output:
	// db-1 [vm-a vm-c] 5242880
	// db-2 [vm-a vm-c] 5242880
	// web-1 [vm-b vm-a] 10485760
	// web-2 [vm-c vm-b] 2621440
	// web-3 [vm-c vm-a] 2621440
	// vm-b down:
	// db-1 [vm-a vm-c vm-b] 3495254
	// db-2 [vm-a vm-c vm-b] 3495253
	// web-1 [vm-a vm-c vm-b] 3495253
	// web-2 [vm-c vm-a vm-b] 2621440
	// web-3 [vm-c vm-a vm-b] 2621440
	// all down:
	// db-1 [vm-a vm-c vm-b] 0
	// db-2 [vm-a vm-c vm-b] 0
	// web-1 [vm-b vm-a vm-c] 0
	// web-2 [vm-c vm-b vm-a] 0
	// web-3 [vm-a vm-c vm-b] 0
	// ring: no live upstream: 3 upstreams configured, none live (config revision 7)
}

// Relays are placed on the upstreams that are not relays only. The three
// agents whose primary is the relay upstream edge (web-3, web-6, web-7)
// share its capacity equally, and are dealt out to the two relays in name
// order: relay-1 weighs 2, relay-2 weighs 1. Each upstream's capacity is
// shared by weight among the agents and relays whose primary it is: vm-b's
// 10 MiB/s in fifths, two of them to relay-1; vm-a's in halves.
func Example_relays() {
	in := ring.Input{
		Upstreams: []ring.Upstream{
			{Name: "vm-a", URL: "http://10.0.0.1:8428/api/v1/import/prometheus", Capacity: 10 << 20},
			{Name: "vm-b", URL: "http://10.0.0.2:8428/api/v1/import/prometheus", Capacity: 10 << 20},
			{Name: "edge", URL: "http://10.0.1.1:8480/api/v1/import/prometheus", Capacity: 3 << 20, Relay: true},
		},
		Agents:    []string{"web-1", "web-2", "web-3", "web-4", "web-5", "web-6", "web-7"},
		Relays:    []string{"relay-1", "relay-2"},
		Fallbacks: 1,
	}
	as, err := ring.Compute(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, node := range append(in.Agents, in.Relays...) {
		a := as[node]
		fmt.Printf("%s %v weight %d budget %d\n", a.Node, a.Upstreams, a.Weight, a.Budget)
	}
	// Output:
	// web-1 [vm-b edge] weight 1 budget 2097152
	// web-2 [vm-a vm-b] weight 1 budget 5242880
	// web-3 [edge vm-a] weight 1 budget 1048576
	// web-4 [vm-b edge] weight 1 budget 2097152
	// web-5 [vm-b edge] weight 1 budget 2097152
	// web-6 [edge vm-b] weight 1 budget 1048576
	// web-7 [edge vm-b] weight 1 budget 1048576
	// relay-1 [vm-b vm-a] weight 2 budget 4194304
	// relay-2 [vm-a vm-b] weight 1 budget 5242880
}
