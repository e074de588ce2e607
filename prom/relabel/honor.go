package relabel

import (
	"slices"
	"strings"

	"github.com/procfleet/procfleet/prom/labels"
)

// ExportedPrefix is put before the name of a scraped label that a target
// label of the same name replaces (honor_labels: false).
const ExportedPrefix = "exported_"

// MergeTarget merges a target's labels into the scraped sample's labels
// held by b (b.Reset(scraped) first), as Prometheus does before
// metric_relabel_configs; apply those to b afterwards. Target labels whose
// name starts with "__" are not merged.
//
// honor false: target labels win. A scraped label whose value is not
// empty and that a target label replaces is kept as exported_<name>, or
// exported_exported_<name> and so on while that name is taken (by a
// scraped or a target label); shorter names are placed first. A target
// label with an empty value deletes the scraped label of its name.
//
// honor true: scraped labels win. A target label is merged only when the
// scraped labels have no label of its name, not even one with an empty
// value (which then leaves the label out).
func MergeTarget(b *labels.Builder, target labels.Labels, honor bool) {
	scraped := b.Base()
	if honor {
		for _, l := range target {
			if !reserved(l.Name) && !scraped.Has(l.Name) {
				b.Set(l.Name, l.Value)
			}
		}
		return
	}
	var cb [8]labels.Label
	conflicts := cb[:0]
	for _, l := range target {
		if reserved(l.Name) {
			continue
		}
		if v := scraped.Get(l.Name); v != "" {
			conflicts = append(conflicts, labels.Label{Name: l.Name, Value: v})
		}
		b.Set(l.Name, l.Value)
	}
	if len(conflicts) == 0 {
		return
	}
	slices.SortStableFunc(conflicts, func(x, y labels.Label) int { return len(x.Name) - len(y.Name) })
	for _, l := range conflicts {
		name := l.Name
		for {
			name = ExportedPrefix + name
			if b.Get(name) == "" {
				b.Set(name, l.Value)
				break
			}
		}
	}
}

// reserved reports whether name is internal (starts with "__"), as the
// labels a target keeps for itself (__address__, __scheme__, ...).
func reserved(name string) bool { return strings.HasPrefix(name, "__") }
