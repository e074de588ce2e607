package targets

import (
	"slices"
)

// Member is a cluster member as a job's `members:` selector sees it.
type Member struct {
	// Name is the member's node name.
	Name string
	// Labels are the labels the member registered with.
	Labels map[string]string
}

// Select returns the names of the members whose labels hold every
// name: value pair of selector, sorted, without duplicates: the members
// eligible for a job, to give to Assign. An empty selector selects every
// member. It is a pure function; the result does not depend on the order
// of members.
func Select(members []Member, selector map[string]string) []string {
	var out []string
	for _, m := range members {
		if matches(m.Labels, selector) {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matches reports whether labels hold every pair of selector.
func matches(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
