// Package limit holds the credit (token bucket) limiter that caps the bytes
// per second of all sends of an agent together.
//
// Credit accrues at the configured rate up to the burst, so an idle agent
// saves up at most one burst. A request is admitted once the credit covers
// it; a request larger than the burst is admitted once the bucket is full
// and leaves the limiter in debt (negative credit), which the requests after
// it repay by waiting. Debt keeps the long-run rate exact without blocking a
// large batch forever. Waiters are served in arrival order, so a large
// request is never starved by a stream of small ones.
package limit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

// Limiter is a token bucket in bytes. It is safe for concurrent use.
type Limiter struct {
	// rate mirrors state.rate so that the unlimited fast path and the
	// gauge take no lock.
	rate atomic.Int64

	mu      sync.Mutex
	burst   int64
	credit  float64 // bytes; negative while in debt
	last    time.Time
	waiting int           // callers inside wait, queued or holding turn
	changed chan struct{} // closed and replaced by SetRate

	// turn is held by the one waiter that may take credit next; channel
	// senders queue in arrival order.
	turn chan struct{}

	clk clock

	waits       *metrics.Counter
	waitSeconds *metrics.FloatCounter
}

// clock lets tests replace time.
type clock struct {
	now   func() time.Time
	after func(d time.Duration) (<-chan time.Time, func())
}

func realClock() clock {
	return clock{
		now: time.Now,
		after: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTimer(d)
			return t.C, func() { t.Stop() }
		},
	}
}

// New returns a limiter with the rate and burst of cfg, its bucket full.
// It registers procfleet_limit_* metrics in set (a new set when nil); set
// must not already hold them.
func New(cfg config.Limit, set *metrics.Set) *Limiter {
	return newLimiter(cfg, set, realClock())
}

func newLimiter(cfg config.Limit, set *metrics.Set, clk clock) *Limiter {
	if set == nil {
		set = metrics.NewSet()
	}
	l := &Limiter{
		changed: make(chan struct{}),
		turn:    make(chan struct{}, 1),
		clk:     clk,
	}
	l.setRateLocked(int64(cfg.BytesPerSecond), int64(cfg.Burst), clk.now())
	l.waits = set.NewCounter("procfleet_limit_waits_total")
	l.waitSeconds = set.NewFloatCounter("procfleet_limit_wait_seconds_total")
	set.NewGauge("procfleet_limit_bytes_per_second", func() float64 {
		return float64(l.rate.Load())
	})
	return l
}

// Rate returns the current rate in bytes per second (0 = unlimited) and
// burst in bytes.
func (l *Limiter) Rate() (bytesPerSecond, burst int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate.Load(), l.burst
}

// SetRate changes the rate and burst at once, also for callers already
// waiting: they recompute their wait under the new rate. A rate of 0 (or
// below) means unlimited and releases every waiter; a burst of 0 (or below)
// means one second of the rate. Debt carries over to the new rate; saved-up
// credit is cut to the new burst. Going from unlimited to limited starts
// with a full bucket, as New does.
func (l *Limiter) SetRate(bytesPerSecond, burst int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.now()
	l.refillLocked(now)
	l.setRateLocked(bytesPerSecond, burst, now)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Limiter) setRateLocked(rate, burst int64, now time.Time) {
	rate = max(rate, 0)
	if burst <= 0 {
		burst = rate
	}
	if l.rate.Load() == 0 && rate > 0 {
		l.credit = float64(burst)
	}
	l.rate.Store(rate)
	l.burst = burst
	l.credit = min(l.credit, float64(burst))
	l.last = now
}

// refillLocked adds the credit earned since the last refill, capped at the
// burst.
func (l *Limiter) refillLocked(now time.Time) {
	rate := l.rate.Load()
	if rate == 0 {
		l.last = now
		return
	}
	if el := now.Sub(l.last); el > 0 {
		l.credit = min(l.credit+float64(rate)*el.Seconds(), float64(l.burst))
	}
	l.last = now
}

// Wait blocks until n bytes of credit are available and takes them, or
// until ctx is done, in which case it takes nothing and returns ctx.Err().
// A request larger than the burst waits for a full bucket and then goes
// into debt. With an unlimited rate, or n <= 0, Wait returns nil at once.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if n <= 0 || l.rate.Load() == 0 {
		return nil
	}
	l.mu.Lock()
	if l.waiting == 0 && l.takeLocked(n) {
		l.mu.Unlock()
		return nil
	}
	l.waiting++
	l.mu.Unlock()
	start := l.clk.now()
	err := l.wait(ctx, n)
	l.mu.Lock()
	l.waiting--
	l.mu.Unlock()
	l.waits.Inc()
	l.waitSeconds.Add(l.clk.now().Sub(start).Seconds())
	return err
}

// takeLocked refills and takes n bytes if the credit covers them (or the
// bucket is full, for n above the burst). It reports whether it took them.
func (l *Limiter) takeLocked(n int) bool {
	if l.rate.Load() == 0 {
		return true
	}
	l.refillLocked(l.clk.now())
	if l.credit >= l.needLocked(n) {
		l.credit -= float64(n)
		return true
	}
	return false
}

func (l *Limiter) needLocked(n int) float64 {
	return float64(min(int64(n), l.burst))
}

func (l *Limiter) wait(ctx context.Context, n int) error {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.turn }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		if l.takeLocked(n) {
			l.mu.Unlock()
			return nil
		}
		secs := (l.needLocked(n) - l.credit) / float64(l.rate.Load())
		changed := l.changed
		l.mu.Unlock()

		d := time.Duration(math.Ceil(secs * 1e9))
		fired, stop := l.clk.after(d)
		select {
		case <-fired:
		case <-changed:
		case <-ctx.Done():
		}
		stop()
	}
}
