package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/discovery"
	"github.com/procfleet/procfleet/cluster/gossip"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/config"
)

// scrapeRunner is an agent member's part in clustered scraping: the
// discovery election, this member's discovery of its placement local
// jobs, and the targets it hands its scraper.
type scrapeRunner struct {
	m      *Member
	disc   *discoverer
	local  *discovery.Manager
	out    chan []scrape.Target
	report reporter

	owned     atomic.Int64
	lingering atomic.Int64
	handovers *metrics.Counter
	badLogged map[string]string // only the loop touches it

	// The weight watch, run while a placement cluster job selects the
	// member; only the loop touches these.
	weightsC    <-chan *weightSet // nil while no watch runs
	stopWeights context.CancelFunc
	ctx         context.Context // Run's, for the watches started later
	wg          *sync.WaitGroup
	cli         *clientv3.Client
	weights     atomic.Pointer[weightSet] // the latest the loop took, for the writer
	weightKick  chan struct{}             // ReportTargets tells the writer; capacity 1

	mu          sync.Mutex
	ownedKeys   []string          // the keys of the owned targets of placement cluster jobs
	clusterIDs  map[string]string // key -> ID of the placement cluster targets scraped, lingering ones too
	owners      map[string]string // ID -> owner of the placement cluster targets owned elsewhere
	ownedDigest string            // the scrapedDigest of their IDs
	discErrs    []string          // of the elected discovery
	targetErrs  []string          // targets that cannot be scraped

	leaving atomic.Bool
	kick    chan struct{} // Leave asks the loop to evaluate; capacity 1
	left    chan struct{} // closed once leaving and nothing is scraped
	once    sync.Once
}

func newScrapeRunner(m *Member, local config.Agent) (*scrapeRunner, error) {
	source := "credentials: in the agent's config"
	if local.ConfigFile != "" {
		source = "credentials: in " + local.ConfigFile
	}
	deps := discovery.Deps{
		Logger:      m.base.With("component", "discovery"),
		Credentials: func() (map[string]config.Credential, string) { return local.Credentials, source },
	}
	mgr, err := discovery.NewManager(deps)
	if err != nil {
		return nil, err
	}
	r := &scrapeRunner{m: m, local: mgr, out: make(chan []scrape.Target, 1), badLogged: map[string]string{},
		report: reporter{kick: make(chan struct{}, 1)}, kick: make(chan struct{}, 1), left: make(chan struct{}),
		weightKick: make(chan struct{}, 1),
		disc:       newDiscoverer(m.space, m.cfg.Node, deps, m.log)}
	r.disc.onErrors = func(errs []string) {
		r.mu.Lock()
		r.discErrs = errs
		r.mu.Unlock()
		r.noteErrors()
	}
	set := m.cfg.Metrics
	set.NewGauge("procfleet_scrape_targets_owned", func() float64 { return float64(r.owned.Load()) })
	set.NewGauge("procfleet_scrape_targets_lingering", func() float64 { return float64(r.lingering.Load()) })
	set.NewGauge("procfleet_scrape_discovery_elected", func() float64 { return bool01(r.disc.leader.Load()) })
	r.handovers = set.NewCounter("procfleet_scrape_handovers_total")
	return r, nil
}

// start runs the discovery election and the local discovery under wg,
// and returns the published target sets as etcd gives them.
func (r *scrapeRunner) start(ctx context.Context, wg *sync.WaitGroup, cli *clientv3.Client, sess *session.Session) <-chan publishedSets {
	wg.Go(func() { r.disc.run(ctx, cli, sess) })
	wg.Go(func() { _ = r.local.Run(ctx) })
	wg.Go(func() { r.m.runReports(ctx, cli, sess) })
	wg.Go(func() { r.m.runWeights(ctx, cli, sess) })
	r.ctx, r.wg, r.cli = ctx, wg, cli
	return watchTargets(ctx, cli, r.m.space, r.m.log)
}

// setJobs takes the scrape jobs of a config revision: placement cluster
// ones go to the discovery election, placement local ones that select
// this member to its own discovery.
func (r *scrapeRunner) setJobs(jobs []config.ScrapeConfig) {
	r.disc.setJobs(jobs)
	var local []config.ScrapeConfig
	weighed := false
	for _, j := range jobs {
		if j.Placement == config.PlacementLocal && j.SelectsMember(r.m.cfg.Labels) {
			local = append(local, j)
		}
		weighed = weighed || j.Placement == config.PlacementCluster && j.SelectsMember(r.m.cfg.Labels)
	}
	r.watchWeights(weighed)
	if err := r.local.Apply(local); err != nil {
		r.m.log.Warn("cannot apply the local scrape jobs to discovery", "err", err)
	}
}

// watchWeights starts the watch of the members' weight lists when on,
// and stops it when not: a member that no placement cluster job selects
// owns none of their targets and needs no weights. Only the loop calls
// it, once start ran.
func (r *scrapeRunner) watchWeights(on bool) {
	switch {
	case r.ctx == nil || on == (r.weightsC != nil):
	case on:
		ctx, cancel := context.WithCancel(r.ctx)
		r.weightsC, r.stopWeights = watchWeights(ctx, r.wg, r.cli, r.m.space, r.m.log), cancel
	default:
		r.stopWeights()
		r.weightsC, r.stopWeights = nil, nil
		r.weights.Store(nil)
	}
}

// evaluate computes the targets this member scrapes and hands them out
// when the inputs changed or a lingering target is due.
func (r *scrapeRunner) evaluate(ls *loopState, g *gossip.Gossip) {
	if r.weightsC != nil && r.weights.Load() == nil {
		return // the weights are read first: without them the owners would differ from the others'
	}
	in := ownInput{
		node: r.m.cfg.Node, rev: ls.rev, jobs: ls.cluster.ScrapeConfigs, pubs: ls.scrape.pubs,
		agents: liveAgents(ls.view.withoutGone(ls.live)), local: r.local.Targets(), now: time.Now(),
		scraped: map[string]string{}, weights: r.weights.Load(), leaving: r.leaving.Load(),
	}
	if g != nil {
		gone := map[string]bool{}
		for node, st := range g.States() {
			in.scraped[node] = st.Scraped
			gone[node] = st.Leaving
		}
		gone[r.m.cfg.Node] = in.leaving
		in.agents = slices.DeleteFunc(in.agents, func(a targets.Member) bool { return gone[a.Name] })
	} else if in.leaving {
		in.agents = slices.DeleteFunc(in.agents, func(a targets.Member) bool { return a.Name == r.m.cfg.Node })
	}
	sig := in.signature()
	if sig == ls.scrape.lastSig && ls.scrape.wake.IsZero() {
		return
	}
	ls.scrape.lastSig = sig
	out := ls.scrape.own(in)
	r.mu.Lock()
	r.ownedKeys, r.ownedDigest = out.clusterKeys, scrapedDigest(out.cluster)
	r.clusterIDs, r.owners = out.ids, out.others
	r.mu.Unlock()
	r.owned.Store(int64(out.owned))
	r.lingering.Store(int64(out.lingering))
	r.handovers.Add(out.given)
	r.logBad(out.bad)
	r.m.mu.Lock()
	n := len(out.targets)
	changed := r.m.status.Targets == nil || *r.m.status.Targets != n
	r.m.status.Targets = &n
	r.m.mu.Unlock()
	if changed {
		r.m.writeStatus()
	}
	send(context.Background(), r.out, out.targets)
	if in.leaving && len(out.targets) == 0 {
		r.once.Do(func() { close(r.left) })
	}
}

// Leave hands the member's scrape targets over before it stops: it tells
// the gossip the member is leaving, so that the others take its
// placement cluster targets, and keeps scraping each until its new owner
// gossips it scraped it, or for 2 of its intervals. It returns once the
// member scrapes nothing, or when ctx ends. The member's placement local
// targets stop at once. Nothing is handed over without a gossip or
// before the member computed its targets: it returns at once then. A
// relay returns at once.
func (m *Member) Leave(ctx context.Context) {
	r := m.scrape
	if r == nil {
		return
	}
	g, _ := m.gossip.current()
	m.mu.Lock()
	m.gossipState.Leaving = true
	st := m.gossipState
	computed := m.status.Targets != nil
	m.mu.Unlock()
	if g == nil || !computed {
		return
	}
	if err := g.SetLocal(st); err != nil {
		return
	}
	r.leaving.Store(true)
	kick(r.kick)
	select {
	case <-r.left:
		m.log.Info("scrape targets handed over; leaving")
	case <-ctx.Done():
		m.log.Warn("leaving before every scrape target was handed over", "lingering", r.lingering.Load())
	}
}

// logBad logs targets that cannot be scraped when their error starts or
// changes, and puts them in the status.
func (r *scrapeRunner) logBad(bad map[string]string) {
	var errs []string
	for what, err := range bad {
		if r.badLogged[what] != err {
			r.m.log.Warn("a scrape target cannot be scraped", "target", what, "err", err)
		}
		errs = append(errs, what+": "+err)
	}
	r.badLogged = maps.Clone(bad)
	r.mu.Lock()
	r.targetErrs = errs
	r.mu.Unlock()
	r.noteErrors()
}

// maxScrapeErrors bounds the errors a status carries.
const maxScrapeErrors = 20

// noteErrors puts the discovery and target errors in the status when they
// changed.
func (r *scrapeRunner) noteErrors() {
	r.mu.Lock()
	errs := slices.Concat(r.discErrs, r.targetErrs)
	r.mu.Unlock()
	slices.Sort(errs)
	if len(errs) > maxScrapeErrors {
		errs = append(errs[:maxScrapeErrors], fmt.Sprintf("and %d more", len(errs)-maxScrapeErrors))
	}
	m := r.m
	m.mu.Lock()
	changed := !slices.Equal(m.status.ScrapeErrors, errs)
	m.status.ScrapeErrors = errs
	m.mu.Unlock()
	if changed {
		m.writeStatus()
	}
}

// ScrapeTargets delivers the targets the member scrapes each time they
// change, latest only; nil for a relay. The command hands them to the
// agent's scraper (agent.SetTargets).
func (m *Member) ScrapeTargets() <-chan []scrape.Target {
	if m.scrape == nil {
		return nil
	}
	return m.scrape.out
}

// noteScraped gossips the digest of the targets this member owns once
// states, its scraper's, show each of them scraped at least once.
func (r *scrapeRunner) noteScraped(states []scrape.TargetState) {
	r.mu.Lock()
	owned, digest := r.ownedKeys, r.ownedDigest
	r.mu.Unlock()
	m := r.m
	m.mu.Lock()
	done := m.gossipState.Scraped == digest
	m.mu.Unlock()
	if done {
		return
	}
	scraped := make(map[string]bool, len(states))
	for _, s := range states {
		if !s.LastScrape.IsZero() {
			scraped[s.Key] = true
		}
	}
	for _, k := range owned {
		if !scraped[k] {
			return
		}
	}
	m.mu.Lock()
	m.gossipState.Scraped = digest
	st := m.gossipState
	m.mu.Unlock()
	if g, _ := m.gossip.current(); g != nil {
		if err := g.SetLocal(st); err != nil {
			m.log.Warn("cannot gossip the targets scraped", "err", err)
		}
	}
}
