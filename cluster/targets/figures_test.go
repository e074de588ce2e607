package targets

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The figures of issue 13's "Ownership and handover", for any assigner.

// uniformRefs returns n refs of unknown weight, of job "node".
func uniformRefs(n int) []Ref { return jobRefs(n, "node") }

// jobRefs returns n refs of unknown weight, of job.
func jobRefs(n int, job string) []Ref {
	ids := targetIDs(n, job)
	refs := make([]Ref, n)
	for i, id := range ids {
		refs[i] = Ref{ID: id}
	}
	return refs
}

// heavyRefs returns n refs of which every hundredth weighs 100 times the
// others: light ones return between 500 and 2000 samples (log-uniform,
// seeded), or exactly 1000 when flat.
func heavyRefs(n int, flat bool, seed uint64) []Ref {
	rng := rand.New(rand.NewPCG(seed, 1))
	refs := uniformRefs(n)
	for i := range refs {
		s := 1000.0
		if !flat {
			s = 500 * math.Pow(4, rng.Float64())
		}
		if i%100 == 50 {
			s *= 100
		}
		refs[i].Samples = uint64(s)
	}
	return refs
}

// counts returns the targets and samples per member.
func counts(members []string, refs []Ref, owners []string) (n map[string]int, samples map[string]uint64) {
	n = make(map[string]int, len(members))
	samples = make(map[string]uint64, len(members))
	for i, o := range owners {
		n[o]++
		samples[o] += refs[i].Samples
	}
	return n, samples
}

// busiest returns the largest count per member over the ideal.
func busiest(members []string, refs []Ref, owners []string) float64 {
	n, _ := counts(members, refs, owners)
	top := 0
	for _, c := range n {
		top = max(top, c)
	}
	return float64(top) / (float64(len(refs)) / float64(len(members)))
}

// heaviest returns the largest samples per member over the ideal.
func heaviest(members []string, refs []Ref, owners []string) float64 {
	_, s := counts(members, refs, owners)
	var top, total uint64
	for _, c := range s {
		top = max(top, c)
		total += c
	}
	return float64(top) / (float64(total) / float64(len(members)))
}

// leaveFigures removes each member in turn and returns, over all of them,
// the largest and the mean count of moved targets over the ideal share
// (len(refs)/len(members)), and the largest count of moved targets that
// were not on the member that left, as a fraction of all targets.
func leaveFigures(a assigner, members []string, refs []Ref) (moved, mean, others float64) {
	before := a.assign(members, refs)
	ideal := float64(len(refs)) / float64(len(members))
	for k, gone := range members {
		rest := slices.Delete(slices.Clone(members), k, k+1)
		after := a.assign(rest, refs)
		m, o := 0, 0
		for i := range refs {
			if after[i] != before[i] {
				m++
				if before[i] != gone {
					o++
				}
			}
		}
		moved = max(moved, float64(m)/ideal)
		mean += float64(m) / ideal / float64(len(members))
		others = max(others, float64(o)/float64(len(refs)))
	}
	return moved, mean, others
}

// joinFigures adds a member and returns the fraction of targets that
// moved and the fraction that moved to a member other than the new one.
func joinFigures(a assigner, members []string, refs []Ref, newcomer string) (moved, elsewhere float64) {
	before := a.assign(members, refs)
	after := a.assign(append(slices.Clone(members), newcomer), refs)
	m, e := 0, 0
	for i := range refs {
		if after[i] != before[i] {
			m++
			if after[i] != newcomer {
				e++
			}
		}
	}
	return float64(m) / float64(len(refs)), float64(e) / float64(len(refs))
}
