// Package ring places agents on upstream endpoints and shares each
// upstream's capacity among the agents that write to it.
//
// Every agent and relay computes the same placement from the same inputs
// (the upstreams of the cluster config, the live agents, the upstreams the
// cluster considers down), so no leader is needed: [Compute] is a pure,
// deterministic function of its [Input], whatever the order of the names in
// it.
//
// Placement uses consistent hashing with bounded loads
// (github.com/buraksezer/consistent): upstreams are the members of the
// ring, agent node names are its keys. The library is wrapped behind the
// small [Ring] interface; [HashRing] is its implementation, configured so
// that the library's known panics cannot occur and recovered from should
// one occur anyway.
package ring
