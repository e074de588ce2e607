//go:build race

package ring

// raceEnabled skips the slowest ring sizes under the race detector, which
// slows the library's sorting tenfold and finds nothing there: ring
// building is single-goroutine.
const raceEnabled = true
