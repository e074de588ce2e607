package cluster

import (
	"testing"
	"time"
)

// The first event after a quiet spell is taken at once; those within the
// spacing wait for one timer, which an evaluation for another reason
// (a config change) makes unnecessary.
func TestCoalescer(t *testing.T) {
	const every = 50 * time.Millisecond
	c := newCoalescer(every, every, 0)
	t0 := time.Now()
	if !c.now(t0) {
		t.Fatal("first event not taken at once")
	}
	c.evaluated(t0)
	if c.due() != nil {
		t.Fatal("a timer armed with nothing waiting")
	}
	for i := 1; i <= 100; i++ {
		if c.now(t0.Add(time.Duration(i) * time.Millisecond / 10)) {
			t.Fatalf("event %d within the spacing taken at once", i)
		}
	}
	due := c.due()
	if due == nil {
		t.Fatal("events waiting without a timer")
	}
	select {
	case <-due:
		c.fired()
	case <-time.After(10 * time.Second):
		t.Fatal("the timer for the waiting events never fired")
	}
	if c.due() != nil {
		t.Fatal("timer still armed after it fired")
	}
	c.evaluated(time.Now())
	// A config change evaluates while events wait: the timer goes.
	if c.now(time.Now()) {
		t.Fatal("event right after an evaluation taken at once")
	}
	c.evaluated(time.Now())
	if c.due() != nil {
		t.Fatal("timer kept after an evaluation served the waiting events")
	}
	// After a quiet spell, at once again.
	if !c.now(time.Now().Add(every)) {
		t.Fatal("event after a quiet spell not taken at once")
	}
}

// The spacing follows the last evaluation's time: share of it, never less
// than every, never more than most.
func TestCoalescerShare(t *testing.T) {
	const every, most = 50 * time.Millisecond, 2 * time.Second
	c := newCoalescer(every, most, 0.01)
	defer c.stop()
	t0 := time.Now()
	if !c.now(t0) {
		t.Fatal("first event not taken at once")
	}
	c.evaluated(t0)
	c.took(10 * time.Millisecond) // 1s at 1%
	if c.now(t0.Add(900 * time.Millisecond)) {
		t.Fatal("event 0.9s after an evaluation of 10ms taken at once (spacing 1s at 1%)")
	}
	c.stop()
	if !c.now(t0.Add(time.Second)) {
		t.Fatal("event 1s after an evaluation of 10ms not taken at once")
	}
	c.evaluated(t0)
	c.took(time.Second) // 100s at 1%: capped
	if c.now(t0.Add(most - time.Millisecond)) {
		t.Fatal("event within the cap taken at once")
	}
	c.stop()
	if !c.now(t0.Add(most)) {
		t.Fatalf("spacing not capped at %v", most)
	}
	c.evaluated(t0)
	c.took(time.Microsecond) // 100µs at 1%: every
	if c.now(t0.Add(every - time.Millisecond)) {
		t.Fatal("spacing below every")
	}
	c.stop()
	if !c.now(t0.Add(every)) {
		t.Fatal("a quick evaluation left a spacing above every")
	}
	off := newCoalescer(every, most, -1)
	off.evaluated(t0)
	off.took(time.Second)
	if !off.now(t0.Add(every)) {
		t.Fatal("a negative share still spaced by the evaluation's time")
	}
}
