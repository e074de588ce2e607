package discovery

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// Targets is a job's resolved set: what the member that runs discovery
// publishes, and what each member scrapes.
type Targets struct {
	// Job is the job's name.
	Job string
	// Labels are the targets' label sets after relabeling, sorted as
	// Prometheus' labels.Compare orders them, each once. They are shared:
	// read them, never change them.
	Labels []labels.Labels
	// Incomplete names the sources that have not had a refresh without
	// error yet, in config order: their targets are missing from Labels,
	// or some of them. A member that took discovery over from another
	// should not replace the set published before with an incomplete one.
	Incomplete []string
	// Version counts the job's sets, from 1; a set is delivered only when
	// its Labels or Incomplete differ from the last one's.
	Version uint64
}

// Status is the state of a job's discovery.
type Status struct {
	// Job is the job's name.
	Job string `json:"job"`
	// Targets are the targets of the current set; Version its version
	// (0: none delivered yet) and Updated when it was resolved last.
	Targets int       `json:"targets"`
	Version uint64    `json:"version"`
	Updated time.Time `json:"updated"`
	// Stats count what relabeling did with the current set's targets.
	Stats ResolveStats `json:"stats"`
	// Error is the job's own error, "" when it has none: its sources
	// together crossed a bound of the job, and the set delivered is the
	// last one within it.
	Error string `json:"error"`
	// Sources are the states of the job's sources, in config order:
	// static_configs, file_sd_configs, dns_sd_configs, http_sd_configs.
	Sources []SourceStatus `json:"sources"`
}

// Job resolves the targets of one scrape job from all its SD configs and
// delivers its resolved set each time it changes. New starts nothing; Run
// runs the sources and returns after they stopped. Apply, Updates, Current,
// Status and Errors are safe for concurrent use, also while Run runs.
type Job struct {
	deps    Deps
	name    string
	wake    chan struct{} // a plan is pending; capacity 1
	updates chan Targets  // the latest set; capacity 1
	notify  func()        // called after a set is delivered; set before Run
	ran     sync.Once

	mu      sync.Mutex
	cfg     *config.ScrapeConfig // the last applied
	pending *plan
	sources []*runSource // running, in config order
	current Targets
	stats   ResolveStats
	updated time.Time
	jobErr  string
}

// plan is a job's config made ready: its resolver and its sources, not
// started.
type plan struct {
	cfg     *config.ScrapeConfig
	res     *resolver
	sources []namedSource
}

type namedSource struct {
	name string
	src  source
}

// New returns the discovery of job, which it validates. job is read, never
// kept: the Job keeps a copy.
func New(job *config.ScrapeConfig, deps Deps) (*Job, error) {
	deps, err := deps.withDefaults()
	if err != nil {
		return nil, err
	}
	j := &Job{deps: deps, name: job.JobName, wake: make(chan struct{}, 1), updates: make(chan Targets, 1)}
	if err := j.Apply(job); err != nil {
		return nil, err
	}
	return j, nil
}

// Apply makes job the job's config, live: the sources whose config did not
// change keep running (and their targets), the others stop or start, and
// the set is resolved again with job's relabel_configs and job-level
// labels. job must have the job's name. It returns after checking job;
// Run applies it.
func (j *Job) Apply(job *config.ScrapeConfig) error {
	if job.JobName != j.name {
		return fmt.Errorf("job %s: cannot apply the config of job %q", j.name, job.JobName)
	}
	cfg := *job
	if err := cfg.Validate("scrape_configs[" + j.name + "]"); err != nil {
		return err
	}
	j.mu.Lock()
	same := j.cfg != nil && reflect.DeepEqual(*j.cfg, cfg)
	j.mu.Unlock()
	if same {
		return nil
	}
	res, err := newResolver(&cfg)
	if err != nil {
		return err
	}
	p := &plan{cfg: &cfg, res: res, sources: j.buildSources(&cfg)}
	j.mu.Lock()
	j.cfg, j.pending = &cfg, p
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// buildSources makes the sources of cfg, in config order.
func (j *Job) buildSources(cfg *config.ScrapeConfig) []namedSource {
	var out []namedSource
	if len(cfg.StaticConfigs) > 0 {
		out = append(out, namedSource{"static_configs", newStaticSource(cfg.StaticConfigs)})
	}
	for i, c := range cfg.FileSDConfigs {
		out = append(out, namedSource{fmt.Sprintf("file_sd_configs[%d]", i), newFileSource(c, j.deps.FileSDDir, j.deps.Config)})
	}
	for i, c := range cfg.DNSSDConfigs {
		out = append(out, namedSource{fmt.Sprintf("dns_sd_configs[%d]", i), newDNSSource(c, j.deps.Resolver, j.deps.Config)})
	}
	for i, c := range cfg.HTTPSDConfigs {
		out = append(out, namedSource{fmt.Sprintf("http_sd_configs[%d]", i), newHTTPSource(c, j.deps)})
	}
	return out
}

// Updates delivers the job's set each time it changes: the latest only, a
// set not yet received being replaced by a newer one. The first set comes
// once every source has refreshed once (each refresh is bounded by
// FetchTimeout).
func (j *Job) Updates() <-chan Targets { return j.updates }

// Current returns the last set delivered, false before the first.
func (j *Job) Current() (Targets, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.current, j.current.Version > 0
}

// Status returns the job's state and its sources'.
func (j *Job) Status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := Status{Job: j.name, Targets: len(j.current.Labels), Version: j.current.Version,
		Updated: j.updated, Stats: j.stats, Error: j.jobErr}
	for _, rs := range j.sources {
		st.Sources = append(st.Sources, rs.status())
	}
	return st
}

// Errors returns the job's current errors, each saying which source failed,
// what it reads and why; nil when there are none.
func (j *Job) Errors() []error { return statusErrors(j.Status()) }

// statusErrors returns the errors st holds.
func statusErrors(st Status) []error {
	var errs []error
	if st.Error != "" {
		errs = append(errs, fmt.Errorf("job %s: %s", st.Job, st.Error))
	}
	for _, s := range st.Sources {
		if s.LastError != "" {
			errs = append(errs, fmt.Errorf("job %s: %s (%s): %s; keeping its last %d targets", st.Job, s.Name, s.Where, s.LastError, s.Targets))
		}
	}
	return errs
}

// Run runs the job's sources until ctx ends, delivering its set on each
// change, and returns after every source stopped. A Job runs once.
func (j *Job) Run(ctx context.Context) error {
	first := false
	j.ran.Do(func() { first = true })
	if !first {
		return fmt.Errorf("job %s: cannot run twice", j.name)
	}
	l := &loop{j: j, ctx: ctx, updates: make(chan sourceUpdate)}
	defer l.stopAll()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-j.wake:
			l.reconcile()
		case u := <-l.updates:
			l.handle(u)
		}
		if l.dirty && l.allReported() {
			l.publish()
		}
	}
}

// loop is the state of Run's goroutine.
type loop struct {
	j       *Job
	ctx     context.Context
	updates chan sourceUpdate
	live    []*runSource
	res     *resolver
	dirty   bool
}

// reconcile takes the pending plan: it keeps the live sources of the same
// config, stops the others, starts the new ones, and resolves every
// source's groups again with the plan's settings.
func (l *loop) reconcile() {
	l.j.mu.Lock()
	p := l.j.pending
	l.j.pending = nil
	l.j.mu.Unlock()
	if p == nil {
		return
	}
	byKey := map[string][]*runSource{}
	for _, rs := range l.live {
		byKey[rs.src.key()] = append(byKey[rs.src.key()], rs)
	}
	var live []*runSource
	for _, ns := range p.sources {
		k := ns.src.key()
		if old := byKey[k]; len(old) > 0 {
			rs := old[0]
			byKey[k] = old[1:]
			rs.setName(ns.name)
			live = append(live, rs)
			continue
		}
		rs := newRunSource(ns.src, ns.name)
		ctx, cancel := context.WithCancel(l.ctx)
		rs.cancel = cancel
		go rs.run(ctx, l.updates)
		live = append(live, rs)
	}
	for _, old := range byKey {
		for _, rs := range old {
			rs.stop()
		}
	}
	l.live, l.res = live, p.res
	for _, rs := range live {
		if rs.reported {
			l.resolve(rs)
		}
	}
	l.j.mu.Lock()
	l.j.sources = slices.Clone(live)
	l.j.mu.Unlock()
	l.dirty = true
}

// stop stops a started source and waits for its goroutine.
func (rs *runSource) stop() {
	rs.cancel()
	<-rs.done
}

func (l *loop) stopAll() {
	for _, rs := range l.live {
		rs.stop()
	}
}

// handle takes a source's refresh.
func (l *loop) handle(u sourceUpdate) {
	if !slices.Contains(l.live, u.rs) {
		return // stopped since
	}
	if u.rs.record(u, time.Now()) {
		st := u.rs.status()
		log := l.j.deps.Logger.With("job", l.j.name, "source", st.Name, "where", st.Where)
		if u.err != nil {
			log.Warn("discovery source failed; keeping its last targets", "targets", st.Targets, "error", u.err)
		} else if st.Refreshes > 1 {
			log.Info("discovery source recovered", "targets", st.Targets)
		}
	}
	if u.err == nil && !u.rs.succeeded {
		u.rs.succeeded = true
		l.dirty = true
	}
	if u.changed || !u.rs.reported {
		u.rs.groups = u.groups
		u.rs.reported = true
		l.resolve(u.rs)
		l.dirty = true
	}
}

func (l *loop) resolve(rs *runSource) {
	var st ResolveStats
	var out []labels.Labels
	for _, g := range rs.groups {
		out = l.res.group(g, out, &st)
	}
	rs.resolved, rs.stats = sortUnique(out), st
}

func (l *loop) allReported() bool {
	for _, rs := range l.live {
		if !rs.reported {
			return false
		}
	}
	return true
}

// publish delivers the union of the sources' resolved sets if the job is
// within its bounds and the set changed.
func (l *loop) publish() {
	l.dirty = false
	if err := l.checkBounds(); err != nil {
		l.setJobErr(err.Error())
		return
	}
	l.setJobErr("")
	n := 0
	var st ResolveStats
	for _, rs := range l.live {
		n += len(rs.resolved)
		st.add(rs.stats)
	}
	all := make([]labels.Labels, 0, n)
	var incomplete []string
	for _, rs := range l.live {
		all = append(all, rs.resolved...)
		if !rs.succeeded {
			incomplete = append(incomplete, rs.status().Name)
		}
	}
	all = sortUnique(all)
	j := l.j
	j.mu.Lock()
	j.stats, j.updated = st, time.Now()
	if j.current.Version > 0 && slices.Equal(incomplete, j.current.Incomplete) &&
		slices.EqualFunc(all, j.current.Labels, labels.Labels.Equal) {
		j.mu.Unlock()
		return
	}
	j.current = Targets{Job: j.name, Labels: all, Incomplete: incomplete, Version: j.current.Version + 1}
	t := j.current
	j.mu.Unlock()
	select { // latest only: replace a set not yet received
	case <-j.updates:
	default:
	}
	j.updates <- t
	if j.notify != nil {
		j.notify()
	}
}

// checkBounds checks the job's bounds over all its sources together.
func (l *loop) checkBounds() error {
	b := newBudget(l.j.deps.Config)
	for _, rs := range l.live {
		if err := b.add(rs.groups); err != nil {
			var per []string
			for _, rs := range l.live {
				per = append(per, fmt.Sprintf("%s: %d", rs.status().Name, countTargets(rs.groups)))
			}
			return fmt.Errorf("its sources together hold %w (targets: %v); keeping the last set", err, per)
		}
	}
	return nil
}

func (l *loop) setJobErr(msg string) {
	l.j.mu.Lock()
	old := l.j.jobErr
	l.j.jobErr = msg
	l.j.mu.Unlock()
	switch {
	case msg != "" && msg != old:
		l.j.deps.Logger.Warn("discovery job over its bounds; keeping its last set", "job", l.j.name, "error", msg)
	case msg == "" && old != "":
		l.j.deps.Logger.Info("discovery job back within its bounds", "job", l.j.name)
	}
}
