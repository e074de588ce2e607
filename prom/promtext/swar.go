package promtext

import (
	"encoding/binary"
	"math/bits"
)

// Scans of a word (8 bytes) at a time, for the runs of digits and of
// label value bytes that make up most of a line. They read past the end
// of the line into the rest of its buffer, never past the slice's
// capacity, and clamp what they find to the line.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zeroBytes marks the high bit of the first zero byte of x. Bytes above it
// may be marked too; bytes below it never are.
func zeroBytes(x uint64) uint64 { return (x - ones) &^ x & highs }

// skipDigits returns the offset of the first byte of l[i:] that is not a
// decimal digit, or len(l).
func skipDigits(l []byte, i int) int {
	w := l[:cap(l)]
	for i+8 <= len(w) && i < len(l) {
		x := binary.LittleEndian.Uint64(w[i:])
		// A digit is in 0x30..0x3F and stays there when 6 is added; a
		// digit never carries into the next byte, so the first byte that
		// is not a digit is marked right.
		if m := (x&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030) | ((x+ones*6)&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030); m != 0 {
			return min(i+bits.TrailingZeros64(m)/8, len(l))
		}
		i += 8
	}
	if i >= len(l) {
		return len(l)
	}
	for i < len(l) && l[i]-'0' < 10 {
		i++
	}
	return i
}

// skipPlain returns the offset of the first byte of l[i:] that does not
// stand for itself in a label value ('"', '\\', NUL, or not ASCII), or
// len(l).
func skipPlain(l []byte, i int) int {
	w := l[:cap(l)]
	for i+8 <= len(w) && i < len(l) {
		x := binary.LittleEndian.Uint64(w[i:])
		if m := zeroBytes(x^ones*'"') | zeroBytes(x^ones*'\\') | zeroBytes(x) | x&highs; m != 0 {
			return min(i+bits.TrailingZeros64(m)/8, len(l))
		}
		i += 8
	}
	if i >= len(l) {
		return len(l)
	}
	for i < len(l) && plainValue[l[i]] {
		i++
	}
	return i
}
