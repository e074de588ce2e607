package cluster

import "time"

// coalescer spaces the loop's recomputes caused by membership and gossip
// events: the first event after a quiet spell of every is taken at once,
// the events that follow within every are taken together at its end. A
// 1,000-member rolling restart brings thousands of events to every
// member; each recomputes its ring at most 1/every times a second.
// Only the loop uses it.
type coalescer struct {
	every time.Duration
	last  time.Time   // of the last evaluation
	timer *time.Timer // armed while events wait; nil otherwise
}

func newCoalescer(every time.Duration) *coalescer { return &coalescer{every: every} }

// now reports whether an event at t may be evaluated at once; when not, it
// arms the timer (once) for the end of the spacing.
func (c *coalescer) now(t time.Time) bool {
	if c.timer != nil {
		return false // already waiting: this event joins that evaluation
	}
	if wait := c.every - t.Sub(c.last); wait > 0 {
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
