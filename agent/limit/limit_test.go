package limit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

const mib = 1 << 20

// fakeClock is a manual clock. With auto set, every timer fires at once and
// moves the clock to its deadline, which makes single-goroutine tests
// deterministic; otherwise timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	auto   bool
	timers []*fakeTimer
	armed  []time.Duration // every timer's duration, in order
}

type fakeTimer struct {
	at time.Time
	d  time.Duration
	c  chan time.Time
}

func newFakeClock(auto bool) *fakeClock {
	return &fakeClock{t: time.Unix(1_700_000_000, 0), auto: auto}
}

func (c *fakeClock) clock() clock {
	return clock{now: c.now, after: c.after}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) after(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.t.Add(d), d: d, c: make(chan time.Time, 1)}
	c.armed = append(c.armed, d)
	if c.auto {
		c.t = ft.at
		ft.c <- c.t
		return ft.c, func() {}
	}
	c.timers = append(c.timers, ft)
	stop := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == ft {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return
			}
		}
	}
	return ft.c, stop
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.timers[:0]
	for _, ft := range c.timers {
		if !ft.at.After(c.t) {
			ft.c <- c.t
			continue
		}
		kept = append(kept, ft)
	}
	c.timers = kept
}

// waitTimer polls until the nth timer (from 1) was armed and returns its
// duration.
func (c *fakeClock) waitTimer(t *testing.T, n int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.armed) >= n {
			d := c.armed[n-1]
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no waiter armed a timer")
	return 0
}

func newTest(t *testing.T, rate, burst int64, auto bool) (*Limiter, *fakeClock, *metrics.Set) {
	t.Helper()
	fc := newFakeClock(auto)
	set := metrics.NewSet()
	cfg := config.Limit{BytesPerSecond: config.ByteRate(rate), Burst: config.ByteSize(burst)}
	return newLimiter(cfg, set, fc.clock()), fc, set
}

func approx(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("%s = %s; want %s", what, got, want)
	}
}

func TestLongRunRate(t *testing.T) {
	f := func(rate, burst int64, sizes []int, want time.Duration) {
		t.Helper()
		l, fc, _ := newTest(t, rate, burst, true)
		start := fc.now()
		for _, n := range sizes {
			if err := l.Wait(context.Background(), n); err != nil {
				t.Fatalf("Wait: %v", err)
			}
		}
		approx(t, "elapsed", fc.now().Sub(start), want)
	}
	ten := func(n int) []int { return []int{n, n, n, n, n, n, n, n, n, n} }
	// Burst of one send: the first goes at once, nine more take 9/4 s.
	f(4*mib, mib, ten(mib), 2250*time.Millisecond)
	// Default burst (one second): four go at once, six more take 6/4 s.
	f(4*mib, 0, ten(mib), 1500*time.Millisecond)
	// Larger than the burst: each waits for a full bucket and goes into
	// debt, so the long-run rate stays exact: 10 MiB at 1 MiB/s with a
	// 256 KiB burst; the first leaves 768 KiB of debt, and each next one
	// waits 1s to repay it and refill the burst.
	f(mib, 256<<10, ten(mib), 9*time.Second)
	// Unlimited.
	f(0, 0, ten(100*mib), 0)
}

func TestBurstCapAfterIdle(t *testing.T) {
	l, fc, _ := newTest(t, mib, 2*mib, false)
	ctx := context.Background()
	// Drain the initial bucket.
	if err := l.Wait(ctx, 2*mib); err != nil {
		t.Fatal(err)
	}
	fc.Advance(time.Hour)
	// An hour idle saves up only the burst: 2 MiB pass at once...
	for range 2 {
		if err := l.Wait(ctx, mib); err != nil {
			t.Fatal(err)
		}
	}
	// ...and the next MiB needs a full second.
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, mib) }()
	approx(t, "wait after burst", fc.waitTimer(t, 1), time.Second)
	fc.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSetRateWhileWaiting(t *testing.T) {
	f := func(newRate, newBurst int64, wantTimer time.Duration) {
		t.Helper()
		l, fc, _ := newTest(t, mib, mib, false)
		ctx := context.Background()
		if err := l.Wait(ctx, mib); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- l.Wait(ctx, mib) }()
		approx(t, "first timer", fc.waitTimer(t, 1), time.Second)
		fc.Advance(250 * time.Millisecond) // 256 KiB earned
		l.SetRate(newRate, newBurst)
		if wantTimer > 0 {
			approx(t, "timer after SetRate", fc.waitTimer(t, 2), wantTimer)
			fc.Advance(wantTimer)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("waiter not released after SetRate(%d, %d)", newRate, newBurst)
		}
	}
	// Faster: 768 KiB left at 4 MiB/s.
	f(4*mib, 0, 187500*time.Microsecond)
	// Slower: 768 KiB left at 512 KiB/s.
	f(512<<10, mib, 1500*time.Millisecond)
	// Unlimited releases at once.
	f(0, 0, 0)
}

func TestCancel(t *testing.T) {
	l, fc, set := newTest(t, mib, mib, false)
	if err := l.Wait(context.Background(), mib); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, mib) }()
	fc.waitTimer(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v; want context.Canceled", err)
	}
	// A cancelled wait took nothing: one second later a full MiB passes.
	fc.Advance(time.Second)
	if err := l.Wait(context.Background(), mib); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, want := range []string{
		"procfleet_limit_waits_total 1\n",
		"procfleet_limit_bytes_per_second 1048576\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}

func TestFIFO(t *testing.T) {
	// A large waiter queued first is served before small ones that come
	// after it, even though they would fit in the credit earned sooner.
	l, fc, _ := newTest(t, mib, mib, false)
	ctx := context.Background()
	if err := l.Wait(ctx, mib); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	go func() { _ = l.Wait(ctx, mib); order <- "big" }()
	fc.waitTimer(t, 1)
	go func() { _ = l.Wait(ctx, 1024); order <- "small" }()
	time.Sleep(20 * time.Millisecond) // let the small one queue
	fc.Advance(500 * time.Millisecond)
	fc.Advance(500 * time.Millisecond)
	if first := <-order; first != "big" {
		t.Fatalf("first released: %s; want big", first)
	}
	fc.Advance(time.Second)
	<-order
}

func TestRealClock(t *testing.T) {
	// 400 KiB at 1 MiB/s with a 100 KiB burst: about 300 ms.
	l := New(config.Limit{BytesPerSecond: mib, Burst: 100 << 10}, nil)
	start := time.Now()
	for range 4 {
		if err := l.Wait(context.Background(), 100<<10); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 280*time.Millisecond || el > 2*time.Second {
		t.Fatalf("elapsed %s; want about 300ms", el)
	}
}
