package cluster

import "time"

// coalescer spaces the loop's recomputes caused by membership and gossip
// events: the first event after a quiet spell of the spacing is taken at
// once, the events that follow within it are taken together at its end. A
// 1,000-member rolling restart brings thousands of events to every
// member; each recomputes its ring a few times a second at most.
//
// The spacing is every, or share of the time the last evaluation took
// (took/share) when that is longer, capped at most: the ring's cost grows
// with the fleet (about 2.6 ms at 1,000 agents, 17.5 ms at 10,000 over 100
// upstreams), and so does the churn that brings events, so a fixed four
// recomputes a second would cost a member of a large fleet several percent
// of a core, and more on a host whose CPU is taken (the evaluation's wall
// time grows with the wait for a CPU): the member then backs off, rather
// than add to the load. Only the loop uses it.
type coalescer struct {
	every, most time.Duration
	share       float64       // of the time evaluations may take; 0: spacing is every
	spacing     time.Duration // after the last evaluation
	last        time.Time     // of the last evaluation
	timer       *time.Timer   // armed while events wait; nil otherwise
}

func newCoalescer(every, most time.Duration, share float64) *coalescer {
	return &coalescer{every: every, most: max(most, every), share: share, spacing: every}
}

// now reports whether an event at t may be evaluated at once; when not, it
// arms the timer (once) for the end of the spacing.
func (c *coalescer) now(t time.Time) bool {
	if c.timer != nil {
		return false // already waiting: this event joins that evaluation
	}
	if wait := c.spacing - t.Sub(c.last); wait > 0 {
		c.timer = time.NewTimer(wait)
		return false
	}
	return true
}

// evaluated records an evaluation at t; one that any event caused (a
// config change too) serves the events waiting, so the timer is dropped.
func (c *coalescer) evaluated(t time.Time) {
	c.last = t
	c.stop()
}

// took records how long the evaluation last recorded took, which sets the
// spacing before the next one.
func (c *coalescer) took(d time.Duration) {
	c.spacing = c.every
	if c.share > 0 {
		c.spacing = min(max(c.every, time.Duration(float64(d)/c.share)), c.most)
	}
}

// due is the timer's channel, nil (never ready) when nothing waits.
func (c *coalescer) due() <-chan time.Time {
	if c.timer == nil {
		return nil
	}
	return c.timer.C
}

// fired takes note that the timer fired; the caller evaluates.
func (c *coalescer) fired() { c.timer = nil }

func (c *coalescer) stop() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}
