package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/prom/labels"
)

// errNotLeader: a write conditional on holding the discovery election
// found the member no longer holds it.
var errNotLeader = errors.New("no longer the elected discovery member")

// addressLabel is the label a resolved target's address is in.
const addressLabel = "__address__"

// publisher writes the elected member's target sets to etcd, each write
// conditional on still holding the election (leader), following the
// contract of targets.Publication. Only the discoverer's goroutine uses it.
type publisher struct {
	cli    *clientv3.Client
	space  keys.Space
	log    *slog.Logger
	leader clientv3.Cmp

	published map[string]string // job -> SHA-256 of the set its manifest names
}

// load reads the manifests published before, so that an unchanged set is
// not written again and a job gone from the config is deleted.
func (p *publisher) load(ctx context.Context) error {
	resp, err := p.cli.Get(ctx, p.space.Targets(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("cannot read the published targets under %s: %w", p.space.Targets(), err)
	}
	p.published = map[string]string{}
	for _, kv := range resp.Kvs {
		job, ok := p.space.ParseTargetsManifest(string(kv.Key))
		if !ok {
			continue
		}
		m, err := targets.ParseManifest(kv.Value)
		if err == nil && m.Job == job {
			p.published[job] = m.SHA256
		} else {
			p.published[job] = "" // corrupt: written again
		}
	}
	return nil
}

func (p *publisher) has(job string) bool {
	_, ok := p.published[job]
	return ok
}

// publish writes job's set unless etcd holds it already: every chunk but
// the last in a transaction of its own, then the last chunk and the
// manifest in one (a set of one chunk, up to about 100,000 targets with
// few labels, is thus written atomically), then deletes the chunks of
// other generations.
func (p *publisher) publish(ctx context.Context, job string, sets []labels.Labels) error {
	ts := toTargets(sets)
	sum, err := targets.Digest(ts)
	if err != nil {
		return fmt.Errorf("job %s: %w", job, err)
	}
	if old, ok := p.published[job]; ok && old == sum {
		return nil
	}
	pub, err := targets.Encode(p.space, job, ts, targets.DefaultCodecConfig())
	if err != nil {
		return fmt.Errorf("job %s: %w", job, err)
	}
	n := len(pub.Chunks)
	for i, c := range pub.Chunks {
		ops := []clientv3.Op{clientv3.OpPut(c.Key, string(c.Value))}
		if i == n-1 {
			ops = append(ops, clientv3.OpPut(pub.ManifestKey, string(pub.ManifestValue)))
		}
		if err := p.txn(ctx, ops...); err != nil {
			return fmt.Errorf("cannot publish the targets of job %s: %w", job, err)
		}
	}
	p.published[job] = sum
	p.log.Info("published scrape targets", "job", job, "targets", pub.Manifest.Targets, "chunks", n, "bytes", pub.Manifest.Bytes)
	prefix, err := pub.Manifest.ChunkPrefix(p.space)
	if err != nil {
		return err
	}
	return p.deleteChunks(ctx, job, prefix)
}

// deleteChunks deletes job's chunks but those under keep ("" for all).
func (p *publisher) deleteChunks(ctx context.Context, job, keep string) error {
	all, err := p.space.TargetChunksOf(job)
	if err != nil {
		return err
	}
	resp, err := p.cli.Get(ctx, all, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("cannot list the chunks of job %s: %w", job, err)
	}
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		if keep == "" || !strings.HasPrefix(string(kv.Key), keep) {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
	}
	for len(ops) > 0 {
		k := min(len(ops), 100) // etcd takes 128 operations per transaction
		if err := p.txn(ctx, ops[:k]...); err != nil {
			return fmt.Errorf("cannot delete old chunks of job %s: %w", job, err)
		}
		ops = ops[k:]
	}
	return nil
}

// prune deletes the manifests and chunks of the jobs published before
// that jobs (sorted) no longer has.
func (p *publisher) prune(ctx context.Context, jobs []string) error {
	for job := range p.published {
		if _, found := slices.BinarySearch(jobs, job); found {
			continue
		}
		key, err := p.space.TargetsManifest(job)
		if err != nil {
			return err
		}
		if err := p.txn(ctx, clientv3.OpDelete(key)); err != nil {
			return fmt.Errorf("cannot delete the targets of job %s, gone from the config: %w", job, err)
		}
		delete(p.published, job)
		p.log.Info("deleted the published targets of a job gone from the config", "job", job)
		if err := p.deleteChunks(ctx, job, ""); err != nil {
			return err
		}
	}
	return nil
}

// txn commits ops if the member still holds the election.
func (p *publisher) txn(ctx context.Context, ops ...clientv3.Op) error {
	resp, err := p.cli.Txn(ctx).If(p.leader).Then(ops...).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errNotLeader
	}
	return nil
}

// toTargets turns resolved label sets into targets to publish: the
// address out of its label, the other labels as they are.
func toTargets(sets []labels.Labels) []targets.Target {
	out := make([]targets.Target, 0, len(sets))
	for _, ls := range sets {
		t := targets.Target{Labels: make([]targets.Label, 0, len(ls))}
		for _, l := range ls {
			if l.Name == addressLabel {
				t.Address = l.Value
				continue
			}
			t.Labels = append(t.Labels, targets.Label{Name: l.Name, Value: l.Value})
		}
		if t.Address != "" {
			out = append(out, t)
		}
	}
	return out
}

// fromTarget turns a published target back into its label set.
func fromTarget(t targets.Target) labels.Labels {
	ls := make([]labels.Label, 0, len(t.Labels)+1)
	ls = append(ls, labels.Label{Name: addressLabel, Value: t.Address})
	for _, l := range t.Labels {
		ls = append(ls, labels.Label{Name: l.Name, Value: l.Value})
	}
	return labels.FromUnsorted(ls)
}
