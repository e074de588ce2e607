package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/procfleet/procfleet/config"
)

// maxSummaryChanges is how many changes a summary names before it counts
// the rest.
const maxSummaryChanges = 5

// changeSummary returns one line saying what changed from the cluster
// document old to new, such as "upstreams: +vm-c; agents.generators.
// process.threads: false→true". Valid documents are compared as they
// apply, defaults filled in, so that writing out a default is no change;
// an invalid one is compared as written.
func changeSummary(old, new []byte) string {
	if string(old) == string(new) {
		return "no change"
	}
	a, errA := effectiveTree(old)
	b, errB := effectiveTree(new)
	if errA != nil || errB != nil {
		return "(a document that is not YAML)"
	}
	var changes []string
	diffTree("", a, b, &changes)
	if len(changes) == 0 {
		return "no change in effect (comments, layout or defaults)"
	}
	if len(changes) > maxSummaryChanges {
		more := len(changes) - maxSummaryChanges
		changes = append(changes[:maxSummaryChanges], fmt.Sprintf("and %d more", more))
	}
	return strings.Join(changes, "; ")
}

// effectiveTree decodes doc as it applies (ParseCluster, then written out
// again), or as it is written when it is not valid.
func effectiveTree(doc []byte) (any, error) {
	if c, err := config.ParseCluster(doc); err == nil {
		if out, err := config.MarshalCluster(c); err == nil {
			doc = out
		}
	}
	var tree any
	err := yaml.Unmarshal(doc, &tree)
	return tree, err
}

// diffTree appends to changes what differs between a and b at path.
func diffTree(path string, a, b any, changes *[]string) {
	if reflect.DeepEqual(a, b) {
		return
	}
	switch am := a.(type) {
	case map[string]any:
		if bm, ok := b.(map[string]any); ok {
			diffMaps(path, am, bm, changes)
			return
		}
	case []any:
		if bl, ok := b.([]any); ok {
			if ka, kb := keyedItems(am), keyedItems(bl); ka != nil && kb != nil {
				diffKeyed(path, ka, kb, changes)
				return
			}
		}
	}
	if a == nil {
		*changes = append(*changes, "+"+path+valueNote(b))
		return
	}
	if b == nil {
		*changes = append(*changes, "-"+path)
		return
	}
	*changes = append(*changes, path+": "+short(a)+"→"+short(b))
}

func diffMaps(path string, a, b map[string]any, changes *[]string) {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		va, inA := a[k]
		vb, inB := b[k]
		p := join(path, k)
		switch {
		case !inA:
			*changes = append(*changes, "+"+p+valueNote(vb))
		case !inB:
			*changes = append(*changes, "-"+p)
		default:
			diffTree(p, va, vb, changes)
		}
	}
}

// diffKeyed compares lists of named items (upstreams by name, scrape
// configs by job_name): added and removed names in one change, then what
// changed in the items both have.
func diffKeyed(path string, ka, kb *keyed, changes *[]string) {
	var moves []string
	for _, k := range kb.order {
		if _, ok := ka.items[k]; !ok {
			moves = append(moves, "+"+k)
		}
	}
	for _, k := range ka.order {
		if _, ok := kb.items[k]; !ok {
			moves = append(moves, "-"+k)
		}
	}
	if len(moves) > 0 {
		*changes = append(*changes, path+": "+strings.Join(moves, ", "))
	}
	for _, k := range kb.order {
		if va, ok := ka.items[k]; ok {
			diffTree(path+"["+k+"]", va, kb.items[k], changes)
		}
	}
	if len(moves) == 0 && !slices.Equal(ka.order, kb.order) {
		*changes = append(*changes, path+": reordered")
	}
}

type keyed struct {
	order []string
	items map[string]any
}

// keyedItems returns the items of l by their name or job_name, nil unless
// every item has one, unique.
func keyedItems(l []any) *keyed {
	k := &keyed{items: map[string]any{}}
	for _, it := range l {
		m, ok := it.(map[string]any)
		if !ok {
			return nil
		}
		name, ok := m["name"].(string)
		if !ok {
			if name, ok = m["job_name"].(string); !ok {
				return nil
			}
		}
		if _, dup := k.items[name]; dup {
			return nil
		}
		k.order = append(k.order, name)
		k.items[name] = it
	}
	return k
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// valueNote is ": VALUE" for a short scalar added, "" otherwise.
func valueNote(v any) string {
	switch v.(type) {
	case map[string]any, []any, nil:
		return ""
	}
	return ": " + short(v)
}

// short renders v on one line, cut to about 40 characters.
func short(v any) string {
	var s string
	switch v := v.(type) {
	case map[string]any, []any:
		out, err := yaml.Marshal(v)
		if err != nil {
			return "…"
		}
		s = strings.Join(strings.Fields(string(out)), " ")
	case nil:
		s = "null"
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > 40 {
		s = s[:37] + "…"
	}
	return s
}
