package sched

import "time"

// Clock is the scheduler's view of time. It keeps apart the two clocks
// that time.Time folds together, so that tests can step one of them.
//
// Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the wall-clock time, which stamps samples. It may step
	// in either direction (NTP, an operator, a VM resumed).
	Now() time.Time
	// Mono returns the time elapsed on a clock that never steps, since an
	// arbitrary origin fixed for the life of the Clock. Waits and
	// durations are measured on it.
	Mono() time.Duration
}

// SystemClock returns the host's clock: time.Now for the wall clock and
// Go's monotonic reading, from the moment of the call, for Mono.
func SystemClock() Clock { return systemClock{origin: time.Now()} }

type systemClock struct{ origin time.Time }

// Now strips the monotonic reading: the wall clock alone stamps samples,
// and a difference of two stamps must not silently use the other clock.
func (systemClock) Now() time.Time { return time.Now().Round(0) }

func (c systemClock) Mono() time.Duration { return time.Since(c.origin) }
