package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
)

// defaultWait is --wait's timeout when the flag is given without one.
const defaultWait = 60 * time.Second

// maxListed is how many members a progress line names before it counts
// the rest.
const maxListed = 10

// addWaitFlag adds --wait[=TIMEOUT] to a command that writes the config.
func addWaitFlag(cmd *cobra.Command, wait *time.Duration) {
	cmd.Flags().DurationVar(wait, "wait", 0, "after writing, follow the rollout until every live member applied the revision, at most TIMEOUT (--wait alone: "+defaultWait.String()+"; give a time as --wait=2m); exit 1 naming the members that refused it or had not applied it in time")
	cmd.Flags().Lookup("wait").NoOptDefVal = defaultWait.String()
}

// rollout is what a wait knows of the members: the live ones (registered)
// and the status each wrote.
type rollout struct {
	space  keys.Space
	rev    int64
	live   map[string]bool
	status map[string]cluster.Status
}

// progress is where a rollout stands.
type progress struct {
	applied int
	pending []string // live members that have not applied rev, sorted
	refused []string // live members that refused rev, sorted
}

func (r *rollout) progress() progress {
	var p progress
	for node := range r.live {
		s, ok := r.status[node]
		switch {
		case ok && s.ConfigRevision >= r.rev:
			p.applied++
		case ok && s.RejectedRevision >= r.rev:
			p.refused = append(p.refused, node)
		default:
			p.pending = append(p.pending, node)
		}
	}
	slices.Sort(p.pending)
	slices.Sort(p.refused)
	return p
}

func (p progress) String() string {
	total := p.applied + len(p.pending) + len(p.refused)
	if total == 0 {
		return "no live member to apply it (none is registered)"
	}
	s := fmt.Sprintf("applied by %d/%d members", p.applied, total)
	if len(p.pending) > 0 {
		s += "; pending: " + listed(p.pending)
	}
	if len(p.refused) > 0 {
		s += "; refused: " + listed(p.refused)
	}
	return s
}

func (p progress) equal(q progress) bool {
	return p.applied == q.applied && slices.Equal(p.pending, q.pending) && slices.Equal(p.refused, q.refused)
}

// listed joins names, at most maxListed of them.
func listed(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
}

// take applies one key's value (nil: deleted) to the rollout.
func (r *rollout) take(key string, value []byte) {
	if _, node, ok := r.space.ParseMember(key); ok {
		if value == nil {
			delete(r.live, node)
		} else {
			r.live[node] = true
		}
		return
	}
	if node, ok := r.space.ParseStatus(key); ok {
		var s cluster.Status
		if value == nil || json.Unmarshal(value, &s) != nil {
			delete(r.status, node)
			return
		}
		r.status[node] = s
	}
}

// waitRollout follows the rollout of config revision rev to the live
// members of the cluster from their status keys, printing to w each time
// it moves, until every live member applied rev (nil), every one that
// has not refused it, or timeout passed (an error naming those members
// and why).
func waitRollout(ctx context.Context, w io.Writer, cli *clientv3.Client, clusterName string, rev int64, timeout time.Duration) error {
	space, err := keys.New(clusterName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &rollout{space: space, rev: rev}
	var last *progress
	report := func() (progress, bool) {
		p := r.progress()
		if last == nil || !p.equal(*last) {
			fmt.Fprintf(w, "config revision %d: %s\n", rev, p)
			last = &p
		}
		return p, len(p.pending) == 0
	}
	for {
		from, err := r.read(ctx, cli)
		if err == nil {
			if p, done := report(); done {
				return r.result(p)
			}
			err = r.follow(ctx, cli, from, report)
		}
		if errors.Is(err, errRolloutDone) {
			return r.result(*last)
		}
		if ctx.Err() != nil {
			return r.unfinished(ctx, timeout)
		}
		// The watch failed (etcd restarted, history compacted): read
		// everything again.
		select {
		case <-ctx.Done():
			return r.unfinished(ctx, timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// errRolloutDone ends follow once no member is pending.
var errRolloutDone = errors.New("rollout done")

// read takes the members and their status keys from etcd, at one
// revision, and returns the etcd revision to watch from.
func (r *rollout) read(ctx context.Context, cli *clientv3.Client) (int64, error) {
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(r.space.Members(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(r.space.StatusPrefix(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("cannot read the members of cluster %q: %w", r.space.Cluster(), err)
	}
	r.live, r.status = map[string]bool{}, map[string]cluster.Status{}
	for _, kv := range resp.Responses[0].GetResponseRange().GetKvs() {
		r.take(string(kv.Key), []byte{})
	}
	for _, kv := range resp.Responses[1].GetResponseRange().GetKvs() {
		r.take(string(kv.Key), kv.Value)
	}
	return resp.Header.Revision + 1, nil
}

// follow applies the changes of members and status keys from etcd
// revision from until report says the rollout is done (errRolloutDone),
// the watch fails, or ctx ends.
func (r *rollout) follow(ctx context.Context, cli *clientv3.Client, from int64, report func() (progress, bool)) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range cli.Watch(wctx, r.space.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			value := ev.Kv.Value
			if ev.Type == clientv3.EventTypeDelete {
				value = nil
			} else if value == nil {
				value = []byte{}
			}
			r.take(string(ev.Kv.Key), value)
		}
		if _, done := report(); done {
			return errRolloutDone
		}
	}
	return ctx.Err()
}

// result is the end of a rollout with no member pending: nil when every
// live member applied the revision, else an error naming the refusals.
func (r *rollout) result(p progress) error {
	if len(p.refused) == 0 {
		return nil
	}
	var why []string
	for _, n := range p.refused {
		why = append(why, fmt.Sprintf("%s: %s", n, r.status[n].LastError))
	}
	return fmt.Errorf("config revision %d refused by %d of %d members (they keep their revision):\n  %s",
		r.rev, len(p.refused), p.applied+len(p.refused), strings.Join(why, "\n  "))
}

// unfinished is the error of a wait that ended before every member
// applied or refused the revision.
func (r *rollout) unfinished(ctx context.Context, timeout time.Duration) error {
	p := r.progress()
	var lines []string
	for _, n := range p.refused {
		lines = append(lines, fmt.Sprintf("%s refused it: %s", n, r.status[n].LastError))
	}
	for i, n := range p.pending {
		if i == maxListed {
			lines = append(lines, fmt.Sprintf("and %d more pending", len(p.pending)-maxListed))
			break
		}
		s, ok := r.status[n]
		switch {
		case !ok:
			lines = append(lines, n+" has written no status yet")
		case s.LastError != "":
			lines = append(lines, fmt.Sprintf("%s is at revision %d: %s", n, s.ConfigRevision, s.LastError))
		default:
			lines = append(lines, fmt.Sprintf("%s is at revision %d", n, s.ConfigRevision))
		}
	}
	why := fmt.Sprintf("within %s", timeout)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = "before the wait was interrupted"
	}
	return fmt.Errorf("config revision %d not applied by every member %s (%s):\n  %s",
		r.rev, why, p, strings.Join(lines, "\n  "))
}
