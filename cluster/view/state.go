package view

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/config"
)

// MemberID names one registration: a node registered as both an agent and
// a relay (a mistake) shows as both.
type MemberID struct {
	Kind keys.Kind
	Node string
}

// State is the etcd state of one cluster that a view is built from: the
// cluster document, the member keys and the status keys. It is not safe for
// concurrent use.
type State struct {
	// Config is the last cluster document that could be parsed; nil
	// before one could.
	Config *config.Cluster
	// ConfigRevision is the revision of the document in etcd, and
	// ConfigError why it is not Config (missing, invalid); empty when it is.
	ConfigRevision int64
	ConfigError    string
	// Members are the registrations, Status the status keys by node.
	Members map[MemberID]session.Member
	Status  map[string]cluster.Status
	// Revision is the etcd revision of the last key applied or read.
	Revision int64

	space keys.Space
}

// NewState returns the empty state of the cluster of space.
func NewState(space keys.Space) *State {
	return &State{
		Members: map[MemberID]session.Member{}, Status: map[string]cluster.Status{},
		ConfigError: "no cluster config in etcd", space: space,
	}
}

// Apply takes one key of the cluster, put (value) or deleted, at etcd
// revision rev, and reports whether the state changed. Keys that are not
// the config, a member or a status key are ignored, and so are status
// values that cannot be parsed; a config that cannot be parsed leaves
// Config as it was and sets ConfigError.
func (s *State) Apply(key string, value []byte, deleted bool, rev int64) bool {
	s.Revision = max(s.Revision, rev)
	switch {
	case key == s.space.Config():
		s.ConfigRevision = rev
		if deleted {
			s.ConfigError = "no cluster config in etcd"
			return true
		}
		c, err := config.ParseCluster(value)
		if err != nil {
			s.ConfigError = fmt.Sprintf("config revision %d is invalid: %v", rev, err)
			return true
		}
		s.Config, s.ConfigError = &c, ""
		return true
	}
	if kind, node, ok := s.space.ParseMember(key); ok {
		id := MemberID{kind, node}
		if deleted {
			delete(s.Members, id)
			return true
		}
		// What can be read of a value that does not parse whole still
		// shows the registration, as status always did.
		var m session.Member
		_ = json.Unmarshal(value, &m)
		s.Members[id] = m
		return true
	}
	if node, ok := s.space.ParseStatus(key); ok {
		if deleted {
			delete(s.Status, node)
			return true
		}
		var st cluster.Status
		if json.Unmarshal(value, &st) != nil {
			return false
		}
		s.Status[node] = st
		return true
	}
	return false
}

// Read reads the member and status keys of the cluster of space, at one
// etcd revision, and builds its view with c, the cluster document at
// revision rev, which the caller has read.
func Read(ctx context.Context, cli *clientv3.Client, space keys.Space, rev int64, c config.Cluster) (Cluster, error) {
	members, err := cli.Get(ctx, space.Members(), clientv3.WithPrefix())
	if err != nil {
		return Cluster{}, fmt.Errorf("cannot list members: %w", err)
	}
	statuses, err := cli.Get(ctx, space.StatusPrefix(), clientv3.WithPrefix(), clientv3.WithRev(members.Header.Revision))
	if err != nil {
		return Cluster{}, fmt.Errorf("cannot list status keys: %w", err)
	}
	st := NewState(space)
	st.Config, st.ConfigRevision, st.ConfigError = &c, rev, ""
	for _, kv := range members.Kvs {
		st.Apply(string(kv.Key), kv.Value, false, kv.ModRevision)
	}
	for _, kv := range statuses.Kvs {
		st.Apply(string(kv.Key), kv.Value, false, kv.ModRevision)
	}
	st.Revision = members.Header.Revision
	return Build(space.Cluster(), st), nil
}
