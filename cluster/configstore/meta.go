package configstore

import (
	"encoding/json"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Author is who writes the config, as the writing process knows itself.
// etcd does not check it: it is what the operator's command says. Where
// etcd authenticates its clients, EtcdUser is the user the writer
// authenticated as, which etcd's own permissions stand behind.
type Author struct {
	// User is the operating-system user of the writing process.
	User string `json:"user,omitempty"`
	// Host is the host the writing process ran on.
	Host string `json:"host,omitempty"`
	// EtcdUser is the etcd user the writer authenticated as; "" without
	// etcd authentication.
	EtcdUser string `json:"etcd_user,omitempty"`
}

// Meta is what a Store records with each version of the config it
// writes, in the same transaction (keys.Space.ConfigMeta), and keeps with
// the version in the history.
type Meta struct {
	Author
	// Time is when the writer wrote the version, by its own clock.
	Time time.Time `json:"time"`
	// Note says how the version came to be: "config set -f cluster.yaml",
	// "rollback to revision 12", "bootstrap".
	Note string `json:"note,omitempty"`
}

// Writer names who wrote the version: the etcd user when there is one,
// else user@host; "" when nothing was recorded.
func (m Meta) Writer() string {
	switch {
	case m.EtcdUser != "":
		return m.EtcdUser
	case m.User != "" && m.Host != "":
		return m.User + "@" + m.Host
	}
	return m.User + m.Host
}

// WriteOption changes one write of the config (Set, Bootstrap, Rollback).
type WriteOption func(*Meta)

// WithNote records how the version came to be, such as "config edit".
// Default: none for Set, "bootstrap" for Bootstrap, "rollback to revision
// N" for Rollback.
func WithNote(note string) WriteOption {
	return func(m *Meta) { m.Note = note }
}

// meta returns the record of a write made now with opts over note.
func (s *Store) meta(note string, opts []WriteOption) Meta {
	m := Meta{Author: s.opts.author, Time: time.Now().UTC().Truncate(time.Millisecond), Note: note}
	for _, opt := range opts {
		opt(&m)
	}
	return m
}

// decodeMeta returns the record kv holds, nil when there is none or it
// cannot be read (written by a newer or foreign writer).
func decodeMeta(kv *mvccpb.KeyValue) *Meta {
	if kv == nil {
		return nil
	}
	var m Meta
	if json.Unmarshal(kv.Value, &m) != nil {
		return nil
	}
	return &m
}

// currentMeta returns the record of the config version at rev from the
// config-meta key kvs: the record counts only when it was written in the
// same transaction (its ModRevision is rev); a config written by another
// tool leaves the record of the version before.
func currentMeta(kvs []*mvccpb.KeyValue, rev int64) *mvccpb.KeyValue {
	if len(kvs) == 0 || kvs[0].ModRevision != rev {
		return nil
	}
	return kvs[0]
}
