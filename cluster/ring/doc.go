// Package ring places agents and relays on upstream endpoints and shares
// each upstream's capacity among the members that write to it.
//
// Every agent and relay computes the same placement from the same inputs
// (the upstreams of the cluster config, the live agents and relays, the
// upstreams the cluster considers down), so no leader is needed: [Compute]
// is a pure, deterministic function of its [Input], whatever the order of
// the names in it.
//
// Placement uses consistent hashing with bounded loads
// (github.com/buraksezer/consistent): upstreams are the members of the
// ring, node names are its keys. Agents are placed on every upstream;
// relays only on the upstreams that are not relays themselves, so that
// data never loops between relays, and apart from the agents, so that
// relays coming and going never move an agent. A relay weighs, in the
// sharing of capacity, the agents it carries: the agents whose primary is
// a relay upstream, dealt out evenly to the relays. The library is wrapped
// behind the small [Ring] interface; [HashRing] is its implementation,
// configured so that the library's known panics cannot occur and
// recovered from should one occur anyway.
package ring
