package discovery

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/procfleet/procfleet/config"
)

// Manager runs the discovery of several jobs and applies a changed
// scrape_configs live: a new job starts, a removed one stops, a changed one
// restarts only its sources whose config changed (Job.Apply), and the
// others keep running untouched. NewManager starts nothing; Run runs the
// jobs applied, before or while it runs, and returns after they stopped.
// Every method is safe for concurrent use.
type Manager struct {
	deps    Deps
	changed chan struct{} // capacity 1

	mu   sync.Mutex
	jobs map[string]*managedJob
	ctx  context.Context // Run's while it runs, else nil
	ran  bool
	wg   sync.WaitGroup
}

type managedJob struct {
	job    *Job
	cancel context.CancelFunc // nil while not started
	done   chan struct{}
}

// NewManager returns a Manager with no jobs.
func NewManager(deps Deps) (*Manager, error) {
	deps, err := deps.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{deps: deps, changed: make(chan struct{}, 1), jobs: map[string]*managedJob{}}, nil
}

// Apply makes jobs the jobs discovered. It checks them all first (as the
// cluster document's scrape_configs) and changes nothing when one is
// invalid. It does not wait for the jobs' sources.
func (m *Manager) Apply(jobs []config.ScrapeConfig) error {
	if err := config.ScrapeConfigs(jobs).Validate("scrape_configs"); err != nil {
		return err
	}
	created := map[string]*Job{}
	m.mu.Lock()
	for i := range jobs {
		if _, ok := m.jobs[jobs[i].JobName]; ok {
			continue
		}
		j, err := New(&jobs[i], m.deps)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		j.notify = m.signal
		created[jobs[i].JobName] = j
	}
	var stopped []*managedJob
	keep := map[string]bool{}
	for i := range jobs {
		name := jobs[i].JobName
		keep[name] = true
		if j, ok := created[name]; ok {
			mj := &managedJob{job: j, done: make(chan struct{})}
			m.jobs[name] = mj
			if m.ctx != nil {
				m.start(mj)
			}
		} else if err := m.jobs[name].job.Apply(&jobs[i]); err != nil {
			m.mu.Unlock()
			return err // not reached: the jobs were checked above
		}
	}
	for name, mj := range m.jobs {
		if !keep[name] {
			delete(m.jobs, name)
			stopped = append(stopped, mj)
		}
	}
	m.mu.Unlock()
	for _, mj := range stopped {
		if mj.cancel != nil {
			mj.cancel()
			<-mj.done
		}
	}
	if len(stopped) > 0 {
		m.signal()
	}
	return nil
}

// start runs mj's job under Run's context; m.mu is held.
func (m *Manager) start(mj *managedJob) {
	ctx, cancel := context.WithCancel(m.ctx)
	mj.cancel = cancel
	m.wg.Go(func() {
		defer close(mj.done)
		_ = mj.job.Run(ctx) // a Job started once runs without error
	})
}

// signal notes a change for Changed's reader.
func (m *Manager) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Run runs the jobs until ctx ends and returns after they stopped. A
// Manager runs once.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.ran {
		m.mu.Unlock()
		return errors.New("discovery: a Manager runs once")
	}
	m.ran, m.ctx = true, ctx
	for _, mj := range m.jobs {
		m.start(mj)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.ctx = nil
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Changed receives a value after a job delivered a new set or a job was
// removed, coalesced: one value stands for any number of changes since the
// last receive. Its reader then reads Targets.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

// Targets returns the current set of each job that delivered one, by job
// name. A job not in it was removed, or has not resolved its first set.
func (m *Manager) Targets() map[string]Targets {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Targets, len(m.jobs))
	for name, mj := range m.jobs {
		if t, ok := mj.job.Current(); ok {
			out[name] = t
		}
	}
	return out
}

// Status returns the state of every job, by job name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	jobs := make([]*Job, 0, len(m.jobs))
	for _, mj := range m.jobs {
		jobs = append(jobs, mj.job)
	}
	m.mu.Unlock()
	out := make([]Status, len(jobs))
	for i, j := range jobs {
		out[i] = j.Status()
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Job, b.Job) })
	return out
}

// Errors returns the current errors of every job, by job name.
func (m *Manager) Errors() []error {
	var errs []error
	for _, st := range m.Status() {
		errs = append(errs, statusErrors(st)...)
	}
	return errs
}
