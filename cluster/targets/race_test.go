//go:build race

package targets

// raceEnabled shrinks TestCodecSize under the race detector, which slows
// compression and hashing tenfold and finds nothing there: the package
// starts no goroutine.
const raceEnabled = true
