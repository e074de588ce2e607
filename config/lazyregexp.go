package config

import (
	"regexp"
	"sync"
)

// lazyRegexp returns a function that compiles expr on its first call and
// returns the same Regexp afterwards. The validation patterns of this
// package are compiled when a config first needs them, not when the
// program starts: compiled at init, they cost every agent about 0.6 MB of
// allocations and 300 KB of live heap (the {0,252} and {0,61} repetitions
// expand into thousands of instructions) and 16 ms of start-up, though a
// standalone agent with a config file of a few keys uses few or none of
// them. A pattern that does not compile still panics, on first use; each
// is covered by the tests of its validator.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
