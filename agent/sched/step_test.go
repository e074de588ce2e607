package sched

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
)

// stepClock is the host's clock with a wall clock that the test steps;
// Mono, like the scheduler's timers, keeps the host's monotonic time.
type stepClock struct {
	origin time.Time
	offset atomic.Int64 // added to the wall clock, in nanoseconds
}

func newStepClock() *stepClock { return &stepClock{origin: time.Now()} }

func (c *stepClock) Now() time.Time {
	return time.Now().Round(0).Add(time.Duration(c.offset.Load()))
}

func (c *stepClock) Mono() time.Duration  { return time.Since(c.origin) }
func (c *stepClock) Step(d time.Duration) { c.offset.Add(int64(d)) }

// stepRun is what a scan saw: its stamp and both clocks as it began.
type stepRun struct {
	stamp int64 // ms
	wall  time.Time
	mono  time.Duration
}

// stepGen records each scan and steps the wall clock at the end of the
// scans named in steps. Stepping inside a scan makes the step land
// between two of the scheduler's decisions: the scan under way was
// stamped before it, every later one after it.
type stepGen struct {
	clock *stepClock
	steps map[int]time.Duration // scan number (0-based) → step at its end
	mu    sync.Mutex
	runs  []stepRun
}

func (g *stepGen) Name() string { return "stepper" }

func (g *stepGen) Collect(s *emit.Scan) error {
	r := stepRun{stamp: s.Timestamp(), wall: g.clock.Now(), mono: g.clock.Mono()}
	s.Begin("up").Value(1)
	g.mu.Lock()
	n := len(g.runs)
	g.runs = append(g.runs, r)
	g.mu.Unlock()
	if d, ok := g.steps[n]; ok {
		g.clock.Step(d)
	}
	return nil
}

func (g *stepGen) snapshot() []stepRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]stepRun(nil), g.runs...)
}

func (r stepRun) String() string {
	return fmt.Sprintf("stamp %d, wall %d", r.stamp, r.wall.UnixMilli())
}

// A step of the wall clock, back or forward by an hour, neither stops the
// scans nor stamps them with the old clock: scans keep coming at the
// interval, and stamps move to the grid of the new wall clock.
func TestWallClockSteps(t *testing.T) {
	const every = 100 * time.Millisecond
	clock := newStepClock()
	g := &stepGen{clock: clock, steps: map[int]time.Duration{3: -time.Hour, 7: time.Hour}}
	pool := emit.NewPool(4)
	set := metrics.NewSet()
	s, err := New(1, []Job{{Gen: g, Interval: every}},
		Deps{Pool: pool, Sink: &emit.MemSink{Pool: pool}, Metrics: set, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	const want = 12
	deadline := time.Now().Add(30 * time.Second)
	for len(g.snapshot()) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs := g.snapshot()
	if len(runs) < want {
		t.Errorf("%d scans in 30s at %s with the wall clock stepped after scans 3 and 7; want %d: %v", len(runs), every, want, runs)
	}
	for i, r := range runs {
		// Samples carry whole grid points of the wall clock the scan
		// ran under; the bound on lateness is generous for loaded
		// machines and still far below the hour of a step.
		if r.stamp%every.Milliseconds() != 0 {
			t.Errorf("scan %d: stamp %d is not on the %s grid", i, r.stamp, every)
		}
		if late := r.wall.UnixMilli() - r.stamp; late < -every.Milliseconds()/2 || late > 10_000 {
			t.Errorf("scan %d (%v): stamped %dms from the wall clock it ran under; want the new wall clock's grid", i, r, -late)
		}
		if i == 0 {
			continue
		}
		// A gap is one interval, or two when a late scan was skipped;
		// seconds only on a machine that stalls the test itself.
		if gap := r.mono - runs[i-1].mono; gap > 5*time.Second {
			t.Errorf("scan %d came %s after the one before; want about %s", i, gap, every)
		}
		if stepped := i == 4 || i == 8; !stepped && r.stamp <= runs[i-1].stamp {
			t.Errorf("scan %d stamped %d after %d without a step between", i, r.stamp, runs[i-1].stamp)
		}
	}
	// Delays and durations are measured on the monotonic clock: a step
	// does not count as an hour of delay.
	var out strings.Builder
	set.WritePrometheus(&out)
	m := regexp.MustCompile(`(?m)^procfleet_scheduler_delay_seconds\{quantile="1"\} (\S+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no delay quantile 1 in\n%s", out.String())
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v > 10 || v < -1 {
		t.Errorf("largest scheduling delay %s; want well under a second, the steps not counted", m[1])
	}
}

func TestGridPoint(t *testing.T) {
	const every = time.Second
	deadline := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name string
		step time.Duration // of the wall clock since the deadline was set
		late time.Duration // of the timer, on the monotonic clock
		want time.Time
	}{
		{"on time", 0, 0, deadline},
		{"late", 0, 900 * time.Millisecond, deadline},
		{"very late", 0, 3500 * time.Millisecond, deadline},
		{"slewed", 2 * time.Millisecond, 10 * time.Millisecond, deadline},
		{"an hour back", -time.Hour, 20 * time.Millisecond, deadline.Add(-time.Hour)},
		{"an hour forward", time.Hour, 20 * time.Millisecond, deadline.Add(time.Hour)},
		{"less than half back", -400 * time.Millisecond, 0, deadline},
		{"more than half forward", 600 * time.Millisecond, 0, deadline.Add(every)},
		{"half a grid off", -90*time.Minute - 500*time.Millisecond, 0, deadline.Add(-90 * time.Minute)},
	} {
		wall := deadline.Add(c.step + c.late)
		if got := gridPoint(wall, c.late, every); !got.Equal(c.want) {
			t.Errorf("%s: gridPoint = %s, want %s", c.name, got.Format(time.StampMilli), c.want.Format(time.StampMilli))
		}
	}
}
