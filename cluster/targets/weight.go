package targets

import "math/bits"

// MaxWeightClass is the largest weight WeightClass returns: 2^40 samples
// is far beyond any scrape, and the cap keeps sums of weights within 64
// bits for any number of targets Assign accepts.
const MaxWeightClass = 1 << 40

// WeightClass rounds samples, the samples a target's last scrape returned,
// to its three leading binary digits (to nearest, ties up: 1000 becomes
// 1024, 1100 becomes 1024, 1200 becomes 1280), so within 12.5 % of
// samples, and caps it at MaxWeightClass. 0 means unknown and stays 0.
//
// Assign weighs targets by class, not by raw count, so that a target's
// owner does not change on every scrape: classes are 12.5 % to 25 %
// apart. Whoever publishes weights for Assign should publish a new one
// only when its class changes, and may hold one back while the count
// hovers around a boundary. It is a pure function.
func WeightClass(samples uint64) uint64 {
	if samples >= MaxWeightClass {
		return MaxWeightClass
	}
	shift := bits.Len64(samples) - 3 // keep 3 bits
	if shift <= 0 {
		return samples
	}
	return (samples + 1<<(shift-1)) >> shift << shift
}
