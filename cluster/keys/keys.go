// Package keys names procfleet's etcd keys. Every key of a cluster lives
// under /procfleet/<cluster>/:
//
//	config                    the cluster configuration document
//	config-history/<rev>      earlier versions of config, by the revision they had
//	config-meta               who wrote config, when and how (written with it)
//	config-meta-history/<rev> config-meta of the versions in config-history
//	members/agents/<node>     an agent's registration, bound to its lease
//	members/relays/<node>     a relay's registration, bound to its lease
//	status/<node>             a member's status, bound to its lease
//	election/discovery/       the election of the member that runs discovery
//	target-reports/<node>     the states of the targets a member scrapes, bound to its lease
//	target-weights/<node>     the weight classes of the targets a member scraped, bound to its lease
//
// Cluster and node names are checked before they become part of a key, so
// that no name can reach outside its cluster's keyspace. A Space is a plain
// value, safe for concurrent use.
package keys

import (
	"fmt"
	"strconv"
	"strings"
)

// Root is the prefix of every procfleet key.
const Root = "/procfleet/"

// Kind is the kind of a cluster member.
type Kind string

// The kinds of members.
const (
	Agent Kind = "agent"
	Relay Kind = "relay"
)

// Validate reports whether k is a known kind.
func (k Kind) Validate() error {
	switch k {
	case Agent, Relay:
		return nil
	}
	return fmt.Errorf("%w %q: must be %q or %q", ErrInvalidKind, string(k), Agent, Relay)
}

// dir is the directory of the kind under members/.
func (k Kind) dir() string { return string(k) + "s" }

// Space is the keyspace of one cluster.
type Space struct {
	cluster string
}

// New returns the keyspace of cluster, whose name must pass ValidateCluster.
func New(cluster string) (Space, error) {
	if err := ValidateCluster(cluster); err != nil {
		return Space{}, err
	}
	return Space{cluster: cluster}, nil
}

// Cluster returns the cluster's name.
func (s Space) Cluster() string { return s.cluster }

// Prefix returns /procfleet/<cluster>/, the prefix of all the cluster's keys.
func (s Space) Prefix() string { return Root + s.cluster + "/" }

// Config returns the key of the cluster configuration document.
func (s Space) Config() string { return s.Prefix() + "config" }

// ConfigHistory returns the prefix of the earlier versions of the config.
func (s Space) ConfigHistory() string { return s.Prefix() + "config-history/" }

// ConfigHistoryRev returns the key of the config version that had revision
// rev. The revision is zero-padded to 20 digits so that the keys sort in
// revision order.
func (s Space) ConfigHistoryRev(rev int64) string {
	return fmt.Sprintf("%s%020d", s.ConfigHistory(), rev)
}

// ParseConfigHistory returns the revision named by a ConfigHistoryRev key.
func (s Space) ParseConfigHistory(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, s.ConfigHistory())
	if !ok {
		return 0, false
	}
	rev, err := strconv.ParseInt(rest, 10, 64)
	return rev, err == nil && rev > 0
}

// ConfigMeta returns the key of the config's metadata (who wrote it, when),
// written in the same transaction as the config, so that its ModRevision
// is the config's revision.
func (s Space) ConfigMeta() string { return s.Prefix() + "config-meta" }

// ConfigMetaHistory returns the prefix of the metadata of the earlier
// versions of the config.
func (s Space) ConfigMetaHistory() string { return s.Prefix() + "config-meta-history/" }

// ConfigMetaHistoryRev returns the key of the metadata of the config
// version that had revision rev, zero-padded as ConfigHistoryRev.
func (s Space) ConfigMetaHistoryRev(rev int64) string {
	return fmt.Sprintf("%s%020d", s.ConfigMetaHistory(), rev)
}

// ParseConfigMetaHistory returns the revision named by a
// ConfigMetaHistoryRev key.
func (s Space) ParseConfigMetaHistory(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, s.ConfigMetaHistory())
	if !ok {
		return 0, false
	}
	rev, err := strconv.ParseInt(rest, 10, 64)
	return rev, err == nil && rev > 0
}

// Members returns the prefix of all member registrations.
func (s Space) Members() string { return s.Prefix() + "members/" }

// MembersOf returns the prefix of the registrations of one kind of member.
func (s Space) MembersOf(k Kind) string { return s.Members() + k.dir() + "/" }

// Member returns the registration key of node, a member of kind k.
func (s Space) Member(k Kind, node string) (string, error) {
	if err := k.Validate(); err != nil {
		return "", err
	}
	if err := ValidateNode(node); err != nil {
		return "", err
	}
	return s.MembersOf(k) + node, nil
}

// ParseMember returns the kind and node of a Member key.
func (s Space) ParseMember(key string) (Kind, string, bool) {
	for _, k := range []Kind{Agent, Relay} {
		if node, ok := strings.CutPrefix(key, s.MembersOf(k)); ok && ValidateNode(node) == nil {
			return k, node, true
		}
	}
	return "", "", false
}

// StatusPrefix returns the prefix of all status keys.
func (s Space) StatusPrefix() string { return s.Prefix() + "status/" }

// Status returns the status key of node.
func (s Space) Status(node string) (string, error) {
	if err := ValidateNode(node); err != nil {
		return "", err
	}
	return s.StatusPrefix() + node, nil
}

// ParseStatus returns the node of a Status key.
func (s Space) ParseStatus(key string) (string, bool) {
	node, ok := strings.CutPrefix(key, s.StatusPrefix())
	return node, ok && ValidateNode(node) == nil
}

// DiscoveryElection returns the prefix of the election (etcd's
// concurrency.Election) of the member that runs discovery for the
// cluster's `placement: cluster` scrape jobs.
func (s Space) DiscoveryElection() string { return s.Prefix() + "election/discovery" }

// TargetReports returns the prefix of all members' target reports.
func (s Space) TargetReports() string { return s.Prefix() + "target-reports/" }

// TargetReport returns the key of node's target report.
func (s Space) TargetReport(node string) (string, error) {
	if err := ValidateNode(node); err != nil {
		return "", err
	}
	return s.TargetReports() + node, nil
}

// ParseTargetReport returns the node of a TargetReport key.
func (s Space) ParseTargetReport(key string) (string, bool) {
	node, ok := strings.CutPrefix(key, s.TargetReports())
	return node, ok && ValidateNode(node) == nil
}

// TargetWeights returns the prefix of all members' target weight lists.
func (s Space) TargetWeights() string { return s.Prefix() + "target-weights/" }

// TargetWeight returns the key of node's target weight list.
func (s Space) TargetWeight(node string) (string, error) {
	if err := ValidateNode(node); err != nil {
		return "", err
	}
	return s.TargetWeights() + node, nil
}

// ParseTargetWeight returns the node of a TargetWeight key.
func (s Space) ParseTargetWeight(key string) (string, bool) {
	node, ok := strings.CutPrefix(key, s.TargetWeights())
	return node, ok && ValidateNode(node) == nil
}
