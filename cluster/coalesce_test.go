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
	c := newCoalescer(every)
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
