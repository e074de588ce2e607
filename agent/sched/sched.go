// Package sched runs generators, each on its own interval, from a heap of
// deadlines on a bounded pool of workers.
//
// Deadlines are aligned to multiples of the interval on the wall clock, and a
// scan's samples carry its deadline as timestamp, so that samples of the
// same series are evenly spaced (which VictoriaMetrics compresses best) and
// agents across a fleet scan at the same instants. A run that is still going
// when its next deadline passes is an overrun: the missed deadlines are
// skipped, never queued up.
//
// When every run due has finished, the scheduler tells a Sink that batches
// (an emit.Flusher) that it is idle, so that a tick's lines leave together
// and at once.
package sched

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
)

// Job is one generator with its interval.
type Job struct {
	Gen      emit.Generator
	Interval time.Duration
	// FullEvery is the refresh period of the job's tracker, in cycles;
	// 0 writes every series on every cycle.
	FullEvery int
}

// Deps are what the scheduler writes to and reports through.
type Deps struct {
	Pool    *emit.Pool
	Sink    emit.Sink
	Logger  *slog.Logger
	Metrics *metrics.Set
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Scheduler runs jobs. New starts nothing; Run runs until its context is
// done and returns after every run in progress has finished.
type Scheduler struct {
	workers int
	deps    Deps
	jobs    []*job
	delay   *metrics.Summary
}

type job struct {
	Job
	scan     *emit.Scan
	tracker  *emit.Tracker
	next     time.Time // next deadline; owned by the Run loop
	due      time.Time // deadline of the run in progress; set before dispatch
	running  bool
	index    int
	runs     *metrics.Counter
	errors   *metrics.Counter
	overruns *metrics.Counter
	emitted  *metrics.Counter
	duration *metrics.FloatCounter
	series   *metrics.Gauge
	lastLog  time.Time
	dropped  int
}

// New returns a scheduler with workers workers for jobs.
func New(workers int, jobs []Job, deps Deps) (*Scheduler, error) {
	if workers < 1 {
		return nil, fmt.Errorf("scheduler: workers %d; want 1 or more", workers)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{workers: workers, deps: deps}
	s.delay = deps.Metrics.GetOrCreateSummary(`procfleet_scheduler_delay_seconds`)
	for _, j := range jobs {
		if j.Interval <= 0 {
			return nil, fmt.Errorf("scheduler: generator %s: interval %s; want a positive interval", j.Gen.Name(), j.Interval)
		}
		name := j.Gen.Name()
		jj := &job{Job: j}
		if j.FullEvery > 0 {
			jj.tracker = emit.NewTracker(j.FullEvery)
		}
		jj.scan = emit.NewScan(deps.Pool, deps.Sink, jj.tracker)
		// GetOrCreate: a scheduler rebuilt on a config change carries on
		// the counters of the one it replaces.
		m := deps.Metrics
		jj.runs = m.GetOrCreateCounter(fmt.Sprintf(`procfleet_generator_runs_total{generator=%q}`, name))
		jj.errors = m.GetOrCreateCounter(fmt.Sprintf(`procfleet_generator_errors_total{generator=%q}`, name))
		jj.overruns = m.GetOrCreateCounter(fmt.Sprintf(`procfleet_scheduler_overruns_total{generator=%q}`, name))
		jj.emitted = m.GetOrCreateCounter(fmt.Sprintf(`procfleet_generator_series_emitted_total{generator=%q}`, name))
		jj.duration = m.GetOrCreateFloatCounter(fmt.Sprintf(`procfleet_generator_duration_seconds_total{generator=%q}`, name))
		jj.series = m.GetOrCreateGauge(fmt.Sprintf(`procfleet_generator_series{generator=%q}`, name), nil)
		s.jobs = append(s.jobs, jj)
	}
	return s, nil
}

// Run runs the jobs until ctx is done. It returns once every run in
// progress has finished, so that all lines written have been sent, and
// after closing the generators that are io.Closers (the process generator
// keeps /proc descriptors open between scans). Run may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.closeGenerators()
	now := s.deps.Now()
	h := make(jobHeap, 0, len(s.jobs))
	for _, j := range s.jobs {
		j.next = now.Truncate(j.Interval).Add(j.Interval)
		heap.Push(&h, j)
	}
	work := make(chan *job)
	done := make(chan *job, len(s.jobs))
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for j := range work {
				s.run(ctx, j)
				done <- j
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	if len(h) == 0 {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*job
	running := 0
	flusher, _ := s.deps.Sink.(emit.Flusher)
	for {
		timer.Reset(h[0].next.Sub(s.deps.Now()))
		var sendTo chan *job
		var first *job
		if len(ready) > 0 {
			sendTo, first = work, ready[0]
		}
		select {
		case <-ctx.Done():
			return nil
		case d := <-done:
			d.running = false
			running--
			// Every scan due has finished: what they wrote may leave now.
			if running == 0 && len(ready) == 0 && flusher != nil {
				if err := flusher.Idle(ctx); err != nil {
					return nil // ctx is done
				}
			}
		case <-timer.C:
			now := s.deps.Now()
			if h[0].next.After(now) {
				continue
			}
			j := heap.Pop(&h).(*job)
			if j.running {
				j.overruns.Inc()
			} else {
				j.running = true
				j.due = j.next
				ready = append(ready, j)
			}
			j.next = nextDeadline(j.next, j.Interval, now)
			heap.Push(&h, j)
		case sendTo <- first:
			ready = ready[1:]
			running++
		}
	}
}

// nextDeadline returns the first deadline after now on the grid of prev,
// counting any skipped ones as missed.
func nextDeadline(prev time.Time, every time.Duration, now time.Time) time.Time {
	next := prev.Add(every)
	if !next.After(now) {
		next = now.Truncate(every).Add(every)
	}
	return next
}

func (s *Scheduler) run(ctx context.Context, j *job) {
	start := s.deps.Now()
	deadline := j.due
	s.delay.Update(start.Sub(deadline).Seconds())
	j.scan.Start(ctx, deadline.UnixMilli())
	err := j.Gen.Collect(j.scan)
	if ferr := j.scan.Finish(); err == nil && ctx.Err() == nil {
		err = ferr
	}
	j.runs.Inc()
	j.duration.Add(s.deps.Now().Sub(start).Seconds())
	j.emitted.Add(j.scan.Emitted())
	j.series.Set(float64(j.scan.Total()))
	if err != nil {
		j.errors.Inc()
		s.logThrottled(j, err)
	}
}

// logThrottled logs at most one error a minute per generator and says how
// many it held back.
func (s *Scheduler) logThrottled(j *job, err error) {
	now := s.deps.Now()
	if now.Sub(j.lastLog) < time.Minute {
		j.dropped++
		return
	}
	s.deps.Logger.Warn("generator failed", "generator", j.Gen.Name(), "err", err, "suppressed", j.dropped)
	j.lastLog, j.dropped = now, 0
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(a, b int) bool { return h[a].next.Before(h[b].next) }
func (h jobHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].index, h[b].index = a, b
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}

// closeGenerators closes the generators that hold resources between scans.
func (s *Scheduler) closeGenerators() {
	for _, j := range s.jobs {
		if c, ok := j.Gen.(io.Closer); ok {
			if err := c.Close(); err != nil {
				s.deps.Logger.Warn("cannot close a generator", "generator", j.Gen.Name(), "err", err)
			}
		}
	}
}
