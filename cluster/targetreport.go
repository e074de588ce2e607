package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/cluster/targets"
)

// TargetReport is what a member writes under target-reports/<node>, bound
// to its lease, for `procfleet targets`: the state of each target it
// scrapes.
type TargetReport struct {
	Node    string         `json:"node"`
	Updated time.Time      `json:"updated"`
	Targets []TargetStatus `json:"targets"`
	// Truncated counts the targets left out to keep the value within
	// maxReportBytes (their labels are left out first).
	Truncated int `json:"truncated,omitempty"`
}

// TargetStatus is one target's state as its scraper knows it.
type TargetStatus struct {
	Job             string            `json:"job"`
	Target          string            `json:"target"`
	Labels          map[string]string `json:"labels,omitempty"`
	Health          string            `json:"health"`
	LastScrape      *time.Time        `json:"last_scrape,omitempty"`
	DurationSeconds float64           `json:"duration_seconds"`
	Samples         int               `json:"samples"`
	LastError       string            `json:"last_error"`
}

// maxReportBytes bounds a report's value, well within etcd's request
// limit.
const maxReportBytes = 1 << 20

// DefaultTargetReportInterval is how often a member rewrites its target
// report at most, unless its targets changed.
const DefaultTargetReportInterval = 5 * time.Second

// reporter writes the member's target report, rate-limited.
type reporter struct {
	mu      sync.Mutex
	pending []scrape.TargetState
	at      time.Time // when pending was reported
	set     bool      // pending was reported once
	keys    uint64    // the targets of the last report written (stateKeys), to tell a change
	kick    chan struct{}
}

// ReportTargets records the states of the targets the agent scrapes; the
// member writes them to etcd at most every TargetReportInterval, and
// at once when the set of targets changed, publishes the weight classes
// of its placement cluster targets (runWeights), and tells the gossip once it
// scraped each target it owns (a member handing targets over to it waits
// for that). It may be called often (every half second); it never blocks.
//
// The command calls it while the agent is given targets or still scrapes
// some, and once more with none; then it may stop until the member hands
// out targets again (ScrapeTargets): what the member still has to do
// without them (clear its report, keep the classes of targets it handed
// over until their new owners publish theirs, retry a failed write) runs
// on its own timers.
func (m *Member) ReportTargets(states []scrape.TargetState) {
	if m.scrape == nil {
		return
	}
	m.scrape.noteScraped(states)
	rep := &m.scrape.report
	rep.mu.Lock()
	rep.pending, rep.at, rep.set = states, time.Now(), true
	rep.mu.Unlock()
	kick(rep.kick)
	kick(m.scrape.weightKick)
}

// makeReport turns the scraper's states into the report of node.
func makeReport(node string, at time.Time, states []scrape.TargetState) *TargetReport {
	r := &TargetReport{Node: node, Updated: at.UTC(), Targets: make([]TargetStatus, 0, len(states))}
	for _, s := range states {
		ts := TargetStatus{Job: s.Job, Target: s.Target, Health: s.Health, DurationSeconds: s.Duration.Seconds(),
			Samples: s.Samples, LastError: s.LastError, Labels: map[string]string{}}
		if !s.LastScrape.IsZero() {
			at := s.LastScrape.UTC()
			ts.LastScrape = &at
		}
		for _, l := range s.Labels {
			ts.Labels[l.Name] = l.Value
		}
		r.Targets = append(r.Targets, ts)
	}
	slices.SortFunc(r.Targets, func(a, b TargetStatus) int {
		return strings.Compare(a.Job+"\x00"+a.Target, b.Job+"\x00"+b.Target)
	})
	return r
}

// latest returns the latest states reported and when, ok false before
// any.
func (rep *reporter) latest() (states []scrape.TargetState, at time.Time, ok bool) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.pending, rep.at, rep.set
}

// reportRetry is how soon a member tries again to write or clear its
// target report after a write failed or while its session was not
// registered: the command may have stopped reporting (it scrapes nothing).
const reportRetry = time.Second

// runReports writes the reports until ctx ends, bound to the session's
// lease. A report without targets is not written: readers take a member
// without a report for one that scrapes nothing, so a member that never
// scraped writes nothing, and one whose targets are gone deletes its
// report instead of rewriting it every TargetReportInterval.
func (m *Member) runReports(ctx context.Context, cli *clientv3.Client, sess *session.Session) {
	rep := &m.scrape.report
	key, err := m.space.TargetReport(m.cfg.Node)
	if err != nil {
		return
	}
	var (
		last  time.Time
		held  bool             // the key holds a report of this member's
		retry <-chan time.Time // armed after a failed write
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-rep.kick:
		case <-retry:
			retry = nil
		}
		states, at, ok := rep.latest()
		if !ok {
			continue
		}
		ids := stateKeys(states)
		if len(states) == 0 && !held {
			rep.keys = ids
			continue
		}
		if ids == rep.keys && time.Since(last) < m.cfg.TargetReportInterval {
			// Unchanged targets wait for the interval; a change does not.
			t := time.NewTimer(m.cfg.TargetReportInterval - time.Since(last))
		wait:
			for {
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
					break wait
				case <-rep.kick:
					if s, _, _ := rep.latest(); stateKeys(s) != rep.keys {
						t.Stop()
						break wait
					}
				}
			}
			states, at, _ = rep.latest()
			ids = stateKeys(states)
		}
		info, _ := sess.Info()
		if info.Phase != session.Registered {
			retry = time.After(reportRetry)
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if len(states) == 0 {
			_, err = cli.Delete(wctx, key)
		} else {
			_, err = cli.Put(wctx, key, string(encodeReport(makeReport(m.cfg.Node, at, states))), clientv3.WithLease(info.Lease))
		}
		cancel()
		if err != nil {
			m.log.Debug("cannot write the target report", "err", err)
			retry = time.After(reportRetry)
			continue
		}
		rep.keys, last, held, retry = ids, time.Now(), len(states) > 0, nil
	}
}

// stateKeys sums up the targets of states whatever their order: their
// count and the sum of their keys' hashes.
func stateKeys(states []scrape.TargetState) uint64 {
	sum := uint64(len(states))
	for _, s := range states {
		h := fnv.New64a()
		h.Write([]byte(s.Key))
		sum += h.Sum64() * 0x9E3779B97F4A7C15
	}
	return sum
}

// encodeReport returns r as JSON within maxReportBytes: without labels,
// then with as many targets as fit.
func encodeReport(r *TargetReport) []byte {
	data, _ := json.Marshal(r)
	if len(data) <= maxReportBytes {
		return data
	}
	c := *r
	c.Targets = slices.Clone(r.Targets)
	for i := range c.Targets {
		c.Targets[i].Labels = nil
	}
	for {
		data, _ = json.Marshal(c)
		if len(data) <= maxReportBytes || len(c.Targets) == 0 {
			return data
		}
		n := len(c.Targets) * maxReportBytes / len(data) * 9 / 10
		c.Truncated += len(c.Targets) - n
		c.Targets = c.Targets[:n]
	}
}

// ReadTargetReports reads every member's target report, by node.
func ReadTargetReports(ctx context.Context, cli *clientv3.Client, space keys.Space) (map[string]TargetReport, error) {
	resp, err := cli.Get(ctx, space.TargetReports(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", space.TargetReports(), err)
	}
	out := map[string]TargetReport{}
	for _, kv := range resp.Kvs {
		node, ok := space.ParseTargetReport(string(kv.Key))
		if !ok {
			continue
		}
		var r TargetReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", kv.Key, err)
		}
		out[node] = r
	}
	return out, nil
}

// ReadPublishedTargets reads the published target set of every job, each
// at the revision of one read of the manifests.
func ReadPublishedTargets(ctx context.Context, cli *clientv3.Client, space keys.Space) (map[string][]targets.Target, error) {
	resp, err := cli.Get(ctx, space.Targets(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", space.Targets(), err)
	}
	out := map[string][]targets.Target{}
	for _, kv := range resp.Kvs {
		job, ok := space.ParseTargetsManifest(string(kv.Key))
		if !ok {
			continue
		}
		m, err := targets.ParseManifest(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		ts, err := readChunks(ctx, cli, space, m, resp.Header.Revision)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", job, err)
		}
		out[job] = ts
	}
	return out, nil
}
