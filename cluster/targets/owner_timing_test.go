package targets

import (
	"fmt"
	"testing"
)

// BenchmarkAssign is what every member pays for a job on each change of
// its targets or members: the whole job's ownership.
func BenchmarkAssign(b *testing.B) {
	for _, c := range []struct {
		targets, members int
		heavy            bool
	}{
		{100000, 100, false},
		{100000, 100, true},
		{10000, 10, false},
		{2000, 10, true},
	} {
		refs := uniformRefs(c.targets)
		if c.heavy {
			refs = heavyRefs(c.targets, false, 1)
		}
		ms := memberNames(c.members)
		b.Run(fmt.Sprintf("targets=%d/members=%d/heavy=%v", c.targets, c.members, c.heavy), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Assign(DefaultConfig(), ms, refs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAlternatives times what Assign was compared with, on 100,000
// targets and 100 members.
func BenchmarkAlternatives(b *testing.B) {
	refs := uniformRefs(100000)
	ms := memberNames(100)
	for _, a := range alternatives(DefaultLoad) {
		b.Run(a.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.assign(ms, refs)
			}
		})
	}
}
