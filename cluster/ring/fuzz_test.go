package ring

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCompute builds inputs from arbitrary names and counts and checks
// that Compute neither panics nor breaks its invariants. Bit i%64 of
// relayMask makes upstream i a relay.
func FuzzCompute(f *testing.F) {
	f.Add("vm-a,vm-b,vm-c", "h1,h2,h3,h4,h5", "", "vm-b", uint64(0), 1, int64(1000))
	f.Add("", "h1", "", "", uint64(0), 0, int64(0))
	f.Add("a,a1,a11,a\x00,\x00", "a,a1,,x", "", "a1,zz", uint64(0), 5, int64(3))
	f.Add("x", "", "", "x", uint64(0), -1, int64(-5))
	f.Add("vm-a,vm-b,relay-a,relay-b", "h1,h2,h3,h4,h5,h6,h7", "r1,r2,r3", "", uint64(0b1100), 2, int64(7))
	f.Add("vm,relay-up", "h1,h2", "r1", "vm", uint64(0b10), 1, int64(1<<62))
	f.Add("relay-up", "h1", "r1,r1,h1", "", uint64(1), 0, int64(10))
	f.Add("vm,r", "h1", "", "", ^uint64(0), 1, int64(1))
	f.Fuzz(func(t *testing.T, upstreams, agents, relays, down string, relayMask uint64, fallbacks int, capacity int64) {
		in := Input{Fallbacks: fallbacks % 64, Agents: split(agents, 2000), Relays: split(relays, 200), Down: split(down, 2000)}
		for i, n := range split(upstreams, 64) {
			in.Upstreams = append(in.Upstreams, Upstream{Name: n, Capacity: capacity + int64(i), Relay: relayMask&(1<<(i%64)) != 0})
		}
		out, err := Compute(in)
		if errors.Is(err, ErrInvalidInput) {
			return
		}
		checkInvariants(t, "fuzz", in, out, err)
		if len(in.Relays) > 0 {
			checkAgentsIgnoreRelays(t, "fuzz", in, out)
		}
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
