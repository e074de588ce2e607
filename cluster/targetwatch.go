package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
)

// published is a job's target set as read from etcd.
type published struct {
	sha     string // names the set (Manifest.SHA256)
	targets []targets.Target
}

// publishedSets are the published sets of every job, by job name.
type publishedSets map[string]published

// watchTargets delivers the published target sets each time one changes:
// a read of every manifest, each set's chunks read at the manifest's
// revision, then a watch of the manifests from the next revision, on the
// config's watch stream (manifests change as rarely as the config, and
// neither waits behind membership events). A set that cannot be read
// keeps the last one read (and the read starts over after a second). The
// channel is closed once ctx ends.
func watchTargets(ctx context.Context, cli *clientv3.Client, space keys.Space, log *slog.Logger) <-chan publishedSets {
	out := make(chan publishedSets, 1)
	go func() {
		defer close(out)
		sets := publishedSets{}
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, space.Targets(), clientv3.WithPrefix())
			if err != nil {
				log.Debug("cannot read the published targets; retrying", "err", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			next := publishedSets{}
			for _, kv := range resp.Kvs {
				if job, ok := space.ParseTargetsManifest(string(kv.Key)); ok {
					next[job] = readSet(ctx, cli, space, job, kv.Value, resp.Header.Revision, sets[job], log)
				}
			}
			sets = next
			if !send(ctx, out, maps.Clone(sets)) {
				return
			}
			wctx, cancel := context.WithCancel(etcdclient.WatchStream(ctx, "config"))
			wch := cli.Watch(wctx, space.Targets(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			for wr := range wch {
				if wr.Err() != nil {
					log.Debug("target watch failed; reading again", "err", wr.Err())
					break
				}
				for _, ev := range wr.Events {
					job, ok := space.ParseTargetsManifest(string(ev.Kv.Key))
					if !ok {
						continue
					}
					if ev.Type == clientv3.EventTypeDelete {
						delete(sets, job)
						continue
					}
					sets[job] = readSet(ctx, cli, space, job, ev.Kv.Value, ev.Kv.ModRevision, sets[job], log)
				}
				if !send(ctx, out, maps.Clone(sets)) {
					cancel()
					return
				}
			}
			cancel()
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}()
	return out
}

// readSet reads the set the manifest value names, its chunks at rev. It
// returns last when the set is the same, or when it cannot be read.
func readSet(ctx context.Context, cli *clientv3.Client, space keys.Space, job string, value []byte, rev int64, last published, log *slog.Logger) published {
	m, err := targets.ParseManifest(value)
	if err == nil && m.Job != job {
		err = fmt.Errorf("manifest of job %q under the key of job %q", m.Job, job)
	}
	if err != nil {
		log.Warn("cannot read the published targets of a job; keeping the last read", "job", job, "err", err)
		return last
	}
	if m.SHA256 == last.sha {
		return last
	}
	ts, err := readChunks(ctx, cli, space, m, rev)
	if err != nil {
		log.Warn("cannot read the published targets of a job; keeping the last read", "job", job, "revision", rev, "err", err)
		return last
	}
	return published{sha: m.SHA256, targets: ts}
}

// readChunks gets m's chunks at rev and decodes them. When etcd compacted
// rev, it reads them at the current revision: the chunks of a generation
// never change.
func readChunks(ctx context.Context, cli *clientv3.Client, space keys.Space, m targets.Manifest, rev int64) ([]targets.Target, error) {
	prefix, err := m.ChunkPrefix(space)
	if err != nil {
		return nil, err
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		if resp, err = cli.Get(ctx, prefix, clientv3.WithPrefix()); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", prefix, err)
		}
	}
	chunks := make([]targets.KeyValue, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		chunks[i] = targets.KeyValue{Key: string(kv.Key), Value: kv.Value}
	}
	return targets.Decode(space, m, chunks)
}

// send replaces any value not yet taken from out with v: the consumer only
// wants the latest.
func send[T any](ctx context.Context, out chan T, v T) bool {
	select {
	case <-out:
	default:
	}
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
