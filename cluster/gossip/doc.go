// Package gossip carries the cluster's soft, fast-changing state between its
// members (agents and relays) over hashicorp/memberlist: which members are
// alive, how each member sees the health of each upstream endpoint, and how
// many bytes per second each member actually sends.
//
// etcd stays the source of truth for configuration and membership; gossip
// adds what etcd is too slow or too expensive for. A member that dies is
// detected in about 2-3 s on a LAN (see DefaultConfig), well before its
// 10 s etcd lease expires, and an upstream is considered down by the rule
// of Down, never by one member's single failed send.
//
// Seeds come from etcd: the caller reads the members' gossip addresses from
// the registry and passes them to Join, as often as it likes. It should
// join again now and then (on each change of the registry, and every 10 s
// or so): that heals a partition, and admits a member that was restarted
// on a new address before the others had declared its old self dead.
//
// Trust: with Config.SecretKey (LoadKeyFile reads a host-local key file)
// every packet is encrypted and authenticated, and a host without the key
// can neither join nor inject a state. Opinion ages are measured on each
// member's own clock (State.Formed): a state carries its age, not only its
// sender's timestamp, so clock skew between members does not count.
//
// Self-metrics, in the set passed in Deps:
//
//	procfleet_gossip_members                 live members seen, this one included (gauge)
//	procfleet_gossip_state_updates_total     member states taken, newer than the one held (local and remote)
//	procfleet_gossip_joins_total             Join calls that reached at least one seed
//	procfleet_gossip_join_errors_total       Join calls that reached none
//	procfleet_gossip_bad_messages_total      gossip messages and states dropped as malformed
//
// A Gossip is made by New, which starts nothing, and runs in Run, which owns
// every goroutine and returns after they exit. Every other method is safe
// for concurrent use and never blocks on the network, except Join.
//
// Memberlist calls this package from its own network goroutines; those
// callbacks only update this package's maps under a short lock and kick a
// buffered channel. Subscribers are signalled from Run's goroutine, never
// from a memberlist callback.
package gossip
