package gossip_test

import (
	"fmt"
	"time"

	"github.com/procfleet/procfleet/cluster/gossip"
)

// Down outvotes a lone member: vm-a is down because two of the three
// members that send there say so; vm-b is not, one of two is not a
// majority; vm-c is, as the only opinion on it, and the stale view of
// host-4 does not count.
func ExampleDown() {
	now := time.Now()
	states := map[string]gossip.State{
		"host-1": {Endpoints: map[string]bool{"vm-a": false, "vm-b": false}, Formed: now},
		"host-2": {Endpoints: map[string]bool{"vm-a": false, "vm-b": true}, Formed: now.Add(-2 * time.Second)},
		"host-3": {Endpoints: map[string]bool{"vm-a": true, "vm-c": false}, Formed: now},
		"host-4": {Endpoints: map[string]bool{"vm-c": true}, Formed: now.Add(-time.Minute)},
	}
	fmt.Println(gossip.Down(states, now))
	// Output: [vm-a vm-c]
}
