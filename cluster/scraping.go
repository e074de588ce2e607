package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/discovery"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/config"
)

// lingerIntervals is how many of a target's intervals its old owner keeps
// scraping it after a planned move, unless the gossip shows the new owner
// scraping first: make before break.
const lingerIntervals = 2

// scraping is what the member's loop keeps of the targets it scrapes; only
// the loop touches it.
type scraping struct {
	pubs    publishedSets
	gotPubs bool
	// scraped are the targets handed to the scraper last, by key, with
	// when another member became their owner (zero while this one owns
	// them) and who.
	scraped map[string]*scrapedTarget
	lastSig string    // the inputs of the last computation
	wake    time.Time // when a lingering target must be looked at again
}

type scrapedTarget struct {
	t       scrape.Target
	id      string // targets.Target.ID of a placement cluster target, "" for a local one
	movedAt time.Time
	to      string
}

// ownInput is what ownership is computed from.
type ownInput struct {
	node    string
	rev     int64
	jobs    []config.ScrapeConfig
	pubs    publishedSets
	agents  []targets.Member // live agents, gossip-dead ones left out
	local   map[string]discovery.Targets
	scraped map[string]string // node -> its gossip's Scraped digest
	weights *weightSet        // the members' weight lists; nil: every target weighs the same
	// leaving: the member hands its targets over and is left out of
	// agents. In the signature too: leaving changes nothing in agents
	// when they never held the member (it left before etcd listed it
	// live), and Leave waits for an evaluation all the same.
	leaving bool
	now     time.Time
}

// ownOutput is what the member scrapes, and what changed.
type ownOutput struct {
	targets []scrape.Target
	owned   int // by ownership, lingering ones aside
	// cluster are the IDs of the owned targets of placement cluster jobs,
	// sorted: what the gossip's Scraped digest names; clusterKeys their
	// keys (scrape.Target.Key), which the scraper's states carry.
	cluster, clusterKeys []string
	// ids are the IDs of the placement cluster targets scraped, owned or
	// lingering, by key; others the owners of those owned elsewhere, by
	// ID. The weight writer takes them.
	ids, others map[string]string
	lingering   int
	given       int // targets this member stopped scraping since it moved
	bad         map[string]string
}

// own computes the targets this member scrapes: those of placement
// cluster jobs that Assign gives it, over the live agents the job
// selects, those of placement local jobs that select it, and those it
// scraped before and that moved to another live member less than
// lingerIntervals ago, until the gossip shows that member scraped them.
func (s *scraping) own(in ownInput) ownOutput {
	want := map[string]scrape.Target{}
	ids := map[string]string{}    // key -> ID, for the owned targets of placement cluster jobs
	others := map[string]string{} // ID -> owner, for the targets owned elsewhere
	out := ownOutput{bad: map[string]string{}}
	var self map[string]string
	for _, a := range in.agents {
		if a.Name == in.node {
			self = a.Labels
		}
	}
	for i := range in.jobs {
		job := &in.jobs[i]
		switch job.Placement {
		case config.PlacementCluster:
			s.ownCluster(in, job, want, ids, others, out.bad)
		case config.PlacementLocal:
			if self == nil || !job.SelectsMember(self) {
				continue
			}
			for _, ls := range in.local[job.JobName].Labels {
				t, err := scrape.TargetFromLabels(job, ls)
				if err != nil {
					out.bad[job.JobName+" "+ls.Get(addressLabel)] = err.Error()
					continue
				}
				want[t.Key()] = t
			}
		}
	}
	out.owned = len(want)
	for key, id := range ids {
		out.cluster, out.clusterKeys = append(out.cluster, id), append(out.clusterKeys, key)
	}
	slices.Sort(out.cluster)
	expect := map[string]string{} // owner -> the digest of what it owns, computed when needed
	covered := func(to string) bool {
		got := in.scraped[to]
		if got == "" {
			return false
		}
		if _, ok := expect[to]; !ok {
			var owned []string
			for id, o := range others {
				if o == to {
					owned = append(owned, id)
				}
			}
			slices.Sort(owned)
			expect[to] = scrapedDigest(owned)
		}
		return got == expect[to]
	}
	next := map[string]*scrapedTarget{}
	for key, t := range want {
		next[key] = &scrapedTarget{t: t, id: ids[key]}
	}
	s.wake = time.Time{}
	for key, st := range s.scraped {
		if _, ok := want[key]; ok {
			continue
		}
		to, moved := others[st.id]
		if !moved || st.id == "" {
			continue // gone from the set, or from the config
		}
		if st.movedAt.IsZero() || st.to != to {
			st.movedAt, st.to = in.now, to
		}
		until := st.movedAt.Add(lingerIntervals * st.t.Interval)
		if in.now.Before(until) && !covered(to) {
			next[key] = st
			out.lingering++
			if s.wake.IsZero() || until.Before(s.wake) {
				s.wake = until
			}
			continue
		}
		out.given++
	}
	s.scraped = next
	out.ids, out.others = make(map[string]string, len(ids)), others
	for key, st := range next {
		if st.id != "" {
			out.ids[key] = st.id
		}
	}
	out.targets = make([]scrape.Target, 0, len(next))
	for _, key := range slices.Sorted(maps.Keys(next)) {
		out.targets = append(out.targets, next[key].t)
	}
	return out
}

// ownCluster assigns the published targets of job over the live agents it
// selects, weighed by the members' published classes, into want and ids
// (this member's, by key) and others (the rest's owners, by ID). Only
// this member's targets are made into scrape targets: that is most of the
// cost.
func (s *scraping) ownCluster(in ownInput, job *config.ScrapeConfig, want map[string]scrape.Target, ids, others, bad map[string]string) {
	set, ok := in.pubs[job.JobName]
	if !ok || len(set.targets) == 0 {
		return
	}
	eligible := targets.Select(in.agents, job.Members)
	refs := make([]targets.Ref, len(set.targets))
	for i, t := range set.targets {
		id := t.ID(job.JobName)
		refs[i] = targets.Ref{ID: id, Samples: in.weights.class(id)}
	}
	res, err := targets.Assign(targets.DefaultConfig(), eligible, refs)
	if err != nil {
		bad[job.JobName] = err.Error()
		return
	}
	for i, pt := range set.targets {
		if res.Owners[i] != in.node {
			others[refs[i].ID] = res.Owners[i]
			continue
		}
		t, err := scrape.TargetFromLabels(job, fromTarget(pt))
		if err != nil {
			bad[job.JobName+" "+pt.Address] = err.Error()
			continue
		}
		key := t.Key()
		want[key], ids[key] = t, refs[i].ID
	}
}

// signature sums up in, but the time, so that an evaluation with the same
// inputs and nothing lingering computes nothing.
func (in ownInput) signature() string {
	var b strings.Builder
	b.WriteString(in.node)
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(in.rev, 10))
	for _, job := range slices.Sorted(maps.Keys(in.pubs)) {
		b.WriteString("\x00p" + job + "=" + in.pubs[job].sha)
	}
	for _, a := range in.agents {
		b.WriteString("\x00a" + a.Name)
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			b.WriteString("," + k + "=" + a.Labels[k])
		}
	}
	if in.weights != nil {
		b.WriteString("\x00w" + strconv.FormatInt(in.weights.rev, 10))
	}
	for _, job := range slices.Sorted(maps.Keys(in.local)) {
		b.WriteString("\x00l" + job + "=" + strconv.FormatUint(in.local[job].Version, 10))
	}
	if in.leaving {
		b.WriteString("\x00leaving")
	}
	return b.String()
}

// liveAgents returns the live agents of set as Select takes them, sorted
// by name.
func liveAgents(set members) []targets.Member {
	var out []targets.Member
	for id, mem := range set {
		if id.Kind == keys.Agent {
			out = append(out, targets.Member{Name: id.Node, Labels: mem.Labels()})
		}
	}
	slices.SortFunc(out, func(a, b targets.Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// scrapedDigest names a sorted set of target IDs (targets.Target.ID) for
// the gossip's Scraped: 32 hex digits of a SHA-256 over them; "" for
// none.
func scrapedDigest(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
