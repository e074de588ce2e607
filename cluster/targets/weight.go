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
// apart. Members publish a new class only when NextClass changes it,
// which holds one back while the count hovers around a boundary. It is a
// pure function.
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

// NextClass returns the class to publish for a target whose published
// class is prev (0 when none) and whose last scrape returned samples (not
// 0): WeightClass(samples), except that prev is kept while samples lies
// strictly between the classes next to prev. A count must thus move a
// whole class away before the class follows it, and a count hovering
// around the boundary of two classes (halfway between them) changes
// nothing. It is a pure function.
func NextClass(prev, samples uint64) uint64 {
	c := WeightClass(samples)
	if prev == 0 || c == prev {
		return c
	}
	if classBelow(prev) < samples && samples < classAbove(prev) {
		return prev
	}
	return c
}

// classAbove returns the class after c, a class: c plus its grid step.
func classAbove(c uint64) uint64 {
	return c + 1<<max(0, bits.Len64(c)-3)
}

// classBelow returns the class before c, a class (0 below 1).
func classBelow(c uint64) uint64 {
	if c <= 1 {
		return 0
	}
	return c - 1<<max(0, bits.Len64(c-1)-3)
}
