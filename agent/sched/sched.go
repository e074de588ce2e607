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
// The wait for a deadline is measured on the monotonic clock, and the stamp
// is taken from the wall clock when the wait ends: a step of the wall clock
// in either direction neither stalls the scans nor stamps them with the old
// time. The first scan after a step is stamped with the grid point of the
// new wall clock nearest to its deadline, and the grid follows from there.
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
	// Clock is the wall and monotonic clock; default SystemClock().
	Clock Clock
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
	at       time.Duration // next deadline on the monotonic clock; owned by the Run loop
	due      time.Time     // wall-clock stamp of the run in progress; set before dispatch
	dueAt    time.Duration // its deadline on the monotonic clock
	running  bool
	index    int
	runs     *metrics.Counter
	errors   *metrics.Counter
	overruns *metrics.Counter
	emitted  *metrics.Counter
	duration *metrics.FloatCounter
	series   *metrics.Gauge
	lastLog  time.Duration // monotonic; 0 before the first log
	dropped  int
}

// New returns a scheduler with workers workers for jobs.
func New(workers int, jobs []Job, deps Deps) (*Scheduler, error) {
	if workers < 1 {
		return nil, fmt.Errorf("scheduler: workers %d; want 1 or more", workers)
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock()
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
	wall, mono := s.deps.Clock.Now(), s.deps.Clock.Mono()
	h := make(jobHeap, 0, len(s.jobs))
	for _, j := range s.jobs {
		j.at = mono + wall.Truncate(j.Interval).Add(j.Interval).Sub(wall)
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
		timer.Reset(h[0].at - s.deps.Clock.Mono())
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
			mono := s.deps.Clock.Mono()
			if h[0].at > mono {
				continue
			}
			j := heap.Pop(&h).(*job)
			if s.fire(j, mono) {
				ready = append(ready, j)
			}
			heap.Push(&h, j)
		case sendTo <- first:
			ready = ready[1:]
			running++
		}
	}
}

// fire handles j's deadline, passed at mono: it stamps the run from the
// wall clock read now and sets j's next deadline. It reports whether the
// run is to be dispatched (false for an overrun).
func (s *Scheduler) fire(j *job, mono time.Duration) bool {
	wall := s.deps.Clock.Now()
	stamp := gridPoint(wall, mono-j.at, j.Interval)
	run := !j.running
	if run {
		j.running = true
		j.due, j.dueAt = stamp, j.at
	} else {
		j.overruns.Inc()
	}
	// The wait to the next deadline is taken from the wall clock now and
	// then measured on the monotonic clock: a later step of the wall
	// clock changes the stamp of the next run, never when it comes.
	j.at = mono + nextDeadline(stamp, j.Interval, wall).Sub(wall)
	return run
}

// gridPoint returns the multiple of every on the wall clock that a
// deadline passed late ago stands for: the grid point nearest to wall-late.
// Without a step of the wall clock that is the deadline itself; after a
// step, it is the grid point of the new wall clock at the same instant.
func gridPoint(wall time.Time, late, every time.Duration) time.Time {
	return wall.Add(-late).Round(every)
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
	start := s.deps.Clock.Mono()
	s.delay.Update((start - j.dueAt).Seconds())
	j.scan.Start(ctx, j.due.UnixMilli())
	err := j.Gen.Collect(j.scan)
	if ferr := j.scan.Finish(); err == nil && ctx.Err() == nil {
		err = ferr
	}
	j.runs.Inc()
	j.duration.Add((s.deps.Clock.Mono() - start).Seconds())
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
	now := s.deps.Clock.Mono()
	if j.lastLog != 0 && now-j.lastLog < time.Minute {
		j.dropped++
		return
	}
	s.deps.Logger.Warn("generator failed", "generator", j.Gen.Name(), "err", err, "suppressed", j.dropped)
	j.lastLog, j.dropped = now, 0
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(a, b int) bool { return h[a].at < h[b].at }
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
