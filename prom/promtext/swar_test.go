package promtext

import (
	"math/rand/v2"
	"testing"
)

// TestSwar compares the word-at-a-time scans with plain loops at every
// offset, for lines that end anywhere in their buffer.
func TestSwar(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("0123456789:;/.-+eE \"\\\x00\x7f\x80\xff\xfa\xc3aZ_{}=,\n")
	for range 2000 {
		buf := make([]byte, rng.IntN(40))
		for i := range buf {
			if rng.IntN(3) == 0 {
				buf[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				buf[i] = byte('0' + rng.IntN(10))
			}
		}
		for end := 0; end <= len(buf); end++ {
			l := buf[:end]
			for i := 0; i <= end; i++ {
				want := i
				for want < end && l[want] >= '0' && l[want] <= '9' {
					want++
				}
				if got := skipDigits(l, i); got != want {
					t.Fatalf("skipDigits(%q, %d) = %d; want %d", buf, i, got, want)
				}
				want = i
				for want < end && plainValue[l[want]] {
					want++
				}
				if got := skipPlain(l, i); got != want {
					t.Fatalf("skipPlain(%q, %d) = %d; want %d", buf, i, got, want)
				}
			}
		}
	}
}
