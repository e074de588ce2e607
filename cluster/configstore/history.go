package configstore

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// archiveOps returns the operations that copy the config at revision
// expect, and its record, to the history and drop the copies beyond the
// limit; ErrConflict when the config is no longer at expect.
func (s *Store) archiveOps(ctx context.Context, expect int64) ([]clientv3.Op, error) {
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(s.key), clientv3.OpGet(s.metaKey)).Commit()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", s.key, err)
	}
	cur := resp.Responses[0].GetResponseRange().GetKvs()
	var rev int64
	if len(cur) > 0 {
		rev = cur[0].ModRevision
	}
	if rev != expect {
		return nil, conflict(expect, rev)
	}
	if s.opts.historyLimit == 0 {
		return nil, nil
	}
	newKey := s.space.ConfigHistoryRev(expect)
	// The copies to keep besides the new one are the newest limit-1; every
	// copy is older than the new one, so the dropped range never holds it
	// (etcd refuses a transaction that puts a key it deletes).
	prefix := s.space.ConfigHistory()
	hist, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(s.opts.historyLimit)))
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", prefix, err)
	}
	var ops []clientv3.Op
	keep := s.opts.historyLimit - 1
	if int(hist.Count) > keep {
		cutoff, cutRev := newKey, expect
		if keep > 0 {
			cutoff = string(hist.Kvs[keep-1].Key)
			cutRev, _ = s.space.ParseConfigHistory(cutoff)
		}
		// The records go with their versions: those below the same
		// revision are dropped too.
		ops = append(ops, clientv3.OpDelete(prefix, clientv3.WithRange(cutoff)),
			clientv3.OpDelete(s.space.ConfigMetaHistory(), clientv3.WithRange(s.space.ConfigMetaHistoryRev(cutRev))))
	}
	ops = append(ops, clientv3.OpPut(newKey, string(cur[0].Value)))
	if meta := currentMeta(resp.Responses[1].GetResponseRange().GetKvs(), expect); meta != nil {
		ops = append(ops, clientv3.OpPut(s.space.ConfigMetaHistoryRev(expect), string(meta.Value)))
	}
	return ops, nil
}

// History returns the current config and the earlier versions kept in the
// history, newest first. It returns an empty list when there is no config
// and no history.
func (s *Store) History(ctx context.Context) ([]Version, error) {
	// One transaction, so that the current version and the copies agree.
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.key),
		clientv3.OpGet(s.space.ConfigHistory(), clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)),
		clientv3.OpGet(s.metaKey),
		clientv3.OpGet(s.space.ConfigMetaHistory(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("cannot read the history of %s: %w", s.key, err)
	}
	metas := map[int64]*Meta{}
	for _, kv := range resp.Responses[3].GetResponseRange().GetKvs() {
		if rev, ok := s.space.ParseConfigMetaHistory(string(kv.Key)); ok {
			metas[rev] = decodeMeta(kv)
		}
	}
	var vs []Version
	for _, kv := range resp.Responses[0].GetResponseRange().GetKvs() {
		meta := currentMeta(resp.Responses[2].GetResponseRange().GetKvs(), kv.ModRevision)
		vs = append(vs, Version{Data: kv.Value, Revision: kv.ModRevision, Meta: decodeMeta(meta)})
	}
	for _, kv := range resp.Responses[1].GetResponseRange().GetKvs() {
		rev, ok := s.space.ParseConfigHistory(string(kv.Key))
		if !ok {
			continue // not ours; leave it alone
		}
		vs = append(vs, Version{Data: kv.Value, Revision: rev, Meta: metas[rev]})
	}
	return vs, nil
}

// Revision returns the version of the config that had revision rev: the
// current one, a copy in the history, or, failing both, etcd's MVCC
// record while it is not compacted. It returns ErrNoRevision when none
// has it.
func (s *Store) Revision(ctx context.Context, rev int64) (Version, error) {
	if rev <= 0 {
		return Version{}, fmt.Errorf("%w: %d is not a revision", ErrNoRevision, rev)
	}
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.key),
		clientv3.OpGet(s.space.ConfigHistoryRev(rev)),
		clientv3.OpGet(s.metaKey),
		clientv3.OpGet(s.space.ConfigMetaHistoryRev(rev)),
	).Commit()
	if err != nil {
		return Version{}, fmt.Errorf("cannot read revision %d of %s: %w", rev, s.key, err)
	}
	if cur := resp.Responses[0].GetResponseRange().GetKvs(); len(cur) > 0 && cur[0].ModRevision == rev {
		meta := currentMeta(resp.Responses[2].GetResponseRange().GetKvs(), rev)
		return Version{Data: cur[0].Value, Revision: rev, Meta: decodeMeta(meta)}, nil
	}
	if kept := resp.Responses[1].GetResponseRange().GetKvs(); len(kept) > 0 {
		var meta *Meta
		if kvs := resp.Responses[3].GetResponseRange().GetKvs(); len(kvs) > 0 {
			meta = decodeMeta(kvs[0])
		}
		return Version{Data: kept[0].Value, Revision: rev, Meta: meta}, nil
	}
	old, err := s.cli.Get(ctx, s.key, clientv3.WithRev(rev))
	switch {
	case errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev):
	case err != nil:
		return Version{}, fmt.Errorf("cannot read revision %d of %s: %w", rev, s.key, err)
	case len(old.Kvs) > 0 && old.Kvs[0].ModRevision == rev:
		return Version{Data: old.Kvs[0].Value, Revision: rev}, nil
	}
	return Version{}, fmt.Errorf("%w: revision %d of %s is not in the history (which keeps %d versions) nor in etcd",
		ErrNoRevision, rev, s.key, s.opts.historyLimit)
}

// Rollback writes the version that had revision rev back as a new
// revision, if the config is still at expectRevision. The old version is
// validated again: the rules may have changed since. It returns the new
// revision, ErrNoRevision, ErrInvalid or ErrConflict. opts say how the
// write is recorded.
func (s *Store) Rollback(ctx context.Context, rev, expectRevision int64, opts ...WriteOption) (int64, error) {
	v, err := s.Revision(ctx, rev)
	if err != nil {
		return 0, err
	}
	return s.set(ctx, v.Data, expectRevision, s.meta(fmt.Sprintf("rollback to revision %d", rev), opts))
}
