package ring

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCompute builds inputs from arbitrary names and counts and checks
// that Compute neither panics nor breaks its invariants.
func FuzzCompute(f *testing.F) {
	f.Add("vm-a,vm-b,vm-c", "h1,h2,h3,h4,h5", "vm-b", 1, int64(1000))
	f.Add("", "h1", "", 0, int64(0))
	f.Add("a,a1,a11,a\x00,\x00", "a,a1,,x", "a1,zz", 5, int64(3))
	f.Add("x", "", "x", -1, int64(-5))
	f.Fuzz(func(t *testing.T, upstreams, agents, down string, fallbacks int, capacity int64) {
		in := Input{Fallbacks: fallbacks % 64, Agents: split(agents, 2000), Down: split(down, 2000)}
		for i, n := range split(upstreams, 64) {
			in.Upstreams = append(in.Upstreams, Upstream{Name: n, Capacity: capacity + int64(i)})
		}
		out, err := Compute(in)
		if errors.Is(err, ErrInvalidInput) {
			return
		}
		checkInvariants(t, "fuzz", in, out, err)
	})
}

// split splits s at commas, keeping at most limit fields so that one
// input cannot take the fuzzer's time.
func split(s string, limit int) []string {
	if s == "" {
		return nil
	}
	fs := strings.Split(s, ",")
	return fs[:min(len(fs), limit)]
}
