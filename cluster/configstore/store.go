// Package configstore keeps the cluster configuration document in etcd, at
// /procfleet/<cluster>/config.
//
// The key's ModRevision is the config's revision. Every write is a
// compare-and-swap on the revision the writer read, so that two editors
// never overwrite each other silently, and every write is validated first,
// so that nothing invalid is stored. Watch delivers each new revision and
// rides through etcd restarts.
//
// History: each write also copies the version it replaces, in the same
// transaction, to /procfleet/<cluster>/config-history/<its revision>, and
// drops the copies beyond the history limit. Each write records who wrote
// it, when and how (Meta) at config-meta, in the same transaction, and
// the record moves to config-meta-history/<revision> with its version. etcd's own MVCC history is
// not enough: it is gone after a compaction, which every production etcd
// runs, and walking it back costs one request per version. The copies are
// exact (the transaction checks the replaced revision) and survive
// compaction; only versions replaced by writers other than this package
// (etcdctl put) are missing from them, and Rollback then falls back to
// MVCC while etcd still has the revision.
//
// A Store is safe for concurrent use; it holds no goroutine except those
// of a Watch, which end with the Watch's context.
package configstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/procfleet/procfleet/cluster/keys"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors of the package, wrapped with details; check them with errors.Is.
var (
	// ErrNotFound: the cluster has no config yet.
	ErrNotFound = errors.New("configstore: cluster has no config")
	// ErrConflict: the config's revision is not the one the write expected:
	// someone else wrote in between. Read again and retry.
	ErrConflict = errors.New("configstore: config changed since it was read")
	// ErrExists: Bootstrap found a config and was not told to overwrite it.
	ErrExists = errors.New("configstore: cluster already has a config")
	// ErrInvalid: the validate function rejected the data; nothing was
	// written. The validation error is wrapped too.
	ErrInvalid = errors.New("configstore: invalid config")
	// ErrNoRevision: Rollback was asked for a revision that is neither in
	// the history nor still in etcd.
	ErrNoRevision = errors.New("configstore: no such config revision")
)

// ValidateFunc checks a config document before it is written. It is called
// on the caller's goroutine and must not keep data.
type ValidateFunc func(data []byte) error

// Version is one version of the config.
type Version struct {
	// Data is the document.
	Data []byte
	// Revision is the config key's ModRevision when this version was
	// written: the config's version number.
	Revision int64
	// Meta is who wrote the version, when and how; nil when that was not
	// recorded (a version written by another tool, such as etcdctl, or by
	// an older procfleet). Watch leaves it nil.
	Meta *Meta
}

// Store reads and writes one cluster's config.
type Store struct {
	cli      *clientv3.Client
	space    keys.Space
	key      string
	metaKey  string
	validate ValidateFunc
	opts     options
}

// New returns the store of cluster's config. validate checks every document
// before it is written (Set, Bootstrap, Rollback); it is required, so that
// no write path skips it. New talks to no one.
func New(cli *clientv3.Client, cluster string, validate ValidateFunc, opts ...Option) (*Store, error) {
	if cli == nil {
		return nil, errors.New("configstore: nil etcd client")
	}
	if validate == nil {
		return nil, errors.New("configstore: nil validate func")
	}
	space, err := keys.New(cluster)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.historyLimit < 0:
		return nil, fmt.Errorf("configstore: negative history limit %d", o.historyLimit)
	case o.retryMin <= 0 || o.retryMax < o.retryMin:
		return nil, fmt.Errorf("configstore: retry waits %s..%s: need 0 < min <= max", o.retryMin, o.retryMax)
	case o.logger == nil:
		return nil, errors.New("configstore: nil logger")
	}
	o.logger = o.logger.With("component", "configstore", "key", space.Config())
	return &Store{cli: cli, space: space, key: space.Config(), metaKey: space.ConfigMeta(), validate: validate, opts: o}, nil
}

// Key returns the config's etcd key.
func (s *Store) Key() string { return s.key }

// Get returns the current config, or ErrNotFound.
func (s *Store) Get(ctx context.Context) (Version, error) {
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(s.key), clientv3.OpGet(s.metaKey)).Commit()
	if err != nil {
		return Version{}, fmt.Errorf("cannot read %s: %w", s.key, err)
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return Version{}, fmt.Errorf("%w (%s is absent; run `procfleet cluster bootstrap`)", ErrNotFound, s.key)
	}
	kv := kvs[0]
	meta := currentMeta(resp.Responses[1].GetResponseRange().GetKvs(), kv.ModRevision)
	return Version{Data: kv.Value, Revision: kv.ModRevision, Meta: decodeMeta(meta)}, nil
}

// Set validates data and writes it if the config is still at
// expectRevision (0: if there is no config yet). It returns the new
// revision, ErrInvalid when validation fails, or ErrConflict when the
// config is at another revision. opts say how the write is recorded.
func (s *Store) Set(ctx context.Context, data []byte, expectRevision int64, opts ...WriteOption) (int64, error) {
	return s.set(ctx, data, expectRevision, s.meta("", opts))
}

func (s *Store) set(ctx context.Context, data []byte, expectRevision int64, meta Meta) (int64, error) {
	if expectRevision < 0 {
		return 0, fmt.Errorf("configstore: negative expected revision %d", expectRevision)
	}
	if err := s.check(data); err != nil {
		return 0, err
	}
	return s.write(ctx, data, expectRevision, meta)
}

// Bootstrap validates data and creates the config with it. When a config
// exists it returns ErrExists, unless force: then it replaces the config
// (which stays in the history) and returns ErrConflict if another write
// came in between. opts say how the write is recorded.
func (s *Store) Bootstrap(ctx context.Context, data []byte, force bool, opts ...WriteOption) (int64, error) {
	if err := s.check(data); err != nil {
		return 0, err
	}
	meta := s.meta("bootstrap", opts)
	cur, err := s.Get(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		rev, err := s.write(ctx, data, 0, meta)
		if errors.Is(err, ErrConflict) {
			return 0, fmt.Errorf("%w: created concurrently by another writer", ErrExists)
		}
		return rev, err
	case err != nil:
		return 0, err
	case !force:
		return 0, fmt.Errorf("%w at revision %d; force to overwrite it", ErrExists, cur.Revision)
	}
	return s.write(ctx, data, cur.Revision, meta)
}

func (s *Store) check(data []byte) error {
	if err := s.validate(data); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// write writes data, and meta beside it, if the config's ModRevision is
// expect, copying the version it replaces to the history in the same
// transaction.
func (s *Store) write(ctx context.Context, data []byte, expect int64, meta Meta) (int64, error) {
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return 0, fmt.Errorf("configstore: cannot encode the write's record: %w", err)
	}
	var ops []clientv3.Op
	if expect > 0 {
		archive, err := s.archiveOps(ctx, expect)
		if err != nil {
			return 0, err
		}
		ops = archive
	}
	ops = append(ops, clientv3.OpPut(s.key, string(data)), clientv3.OpPut(s.metaKey, string(metaJSON)))
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.key), "=", expect)).
		Then(ops...).
		Else(clientv3.OpGet(s.key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", s.key, err)
	}
	if !resp.Succeeded {
		var cur int64
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			cur = kvs[0].ModRevision
		}
		return 0, conflict(expect, cur)
	}
	return resp.Header.Revision, nil
}

func conflict(expect, cur int64) error {
	if cur == 0 {
		return fmt.Errorf("%w: expected revision %d, but there is no config", ErrConflict, expect)
	}
	if expect == 0 {
		return fmt.Errorf("%w: expected no config, but it is at revision %d", ErrConflict, cur)
	}
	return fmt.Errorf("%w: expected revision %d, now at %d", ErrConflict, expect, cur)
}
