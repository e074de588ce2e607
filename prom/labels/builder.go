package labels

import (
	"slices"
	"strings"
)

// Builder changes a label set without copying it: it holds the base set and
// the labels set and deleted since, as Prometheus' labels.Builder does, and
// has its semantics, which relabeling depends on:
//   - a value of "" means no label: Set(n, "") deletes n, Get returns "" for
//     a label that is not there, and a label of the base with an empty
//     value is not there (Labels never returns an empty value);
//   - Range visits the labels of the base that were neither set nor deleted
//     since, in name order, then the labels set since, in the order they were
//     first set (again after a delete), so that a labelmap rule that maps two
//     names to one lets the same one win as in Prometheus.
//
// A Builder keeps its buffers across Reset, so that one Builder per
// goroutine builds label sets with no allocation but the result's. It is
// not safe for concurrent use.
type Builder struct {
	base Labels
	add  []Label
	del  []string
	// snapshots for Range, reused; one per nesting level is not needed:
	// Range is not reentrant (see Range).
	snapAdd []Label
	snapDel []string
}

// NewBuilder returns a Builder over base.
func NewBuilder(base Labels) *Builder {
	b := &Builder{}
	b.Reset(base)
	return b
}

// Reset makes base the Builder's base and forgets every change. base is
// read, never written, until the next Reset. A label of base with an empty
// value counts as deleted, as in Prometheus: Range does not visit it and
// Labels leaves it out.
func (b *Builder) Reset(base Labels) {
	b.base = base
	b.add = b.add[:0]
	b.del = b.del[:0]
	for _, l := range base {
		if l.Value == "" {
			b.del = append(b.del, l.Name)
		}
	}
}

// Base returns the label set given to the last Reset.
func (b *Builder) Base() Labels { return b.base }

// Get returns the value of label n, "" if there is none.
func (b *Builder) Get(n string) string {
	for _, a := range b.add {
		if a.Name == n {
			return a.Value
		}
	}
	if slices.Contains(b.del, n) {
		return ""
	}
	return b.base.Get(n)
}

// Deleted reports whether label n was deleted since Reset (or was in the
// base with an empty value), whether or not it was set again since: as in
// Prometheus' Builder, a base label of that name, or several, is then
// left out of Labels.
func (b *Builder) Deleted(n string) bool { return slices.Contains(b.del, n) }

// Set sets label n to v; v == "" deletes n.
func (b *Builder) Set(n, v string) {
	if v == "" {
		b.Del(n)
		return
	}
	for i := range b.add {
		if b.add[i].Name == n {
			b.add[i].Value = v
			return
		}
	}
	b.add = append(b.add, Label{Name: n, Value: v})
}

// Del deletes label n.
func (b *Builder) Del(n string) {
	for i := range b.add {
		if b.add[i].Name == n {
			b.add = slices.Delete(b.add, i, i+1)
			break
		}
	}
	if !slices.Contains(b.del, n) {
		b.del = append(b.del, n)
	}
}

// Range calls f for each label of the Builder as it is when Range is
// called, in the order described on Builder; f may Set and Del, which
// change neither the labels visited nor their values. f must not call Range.
func (b *Builder) Range(f func(l Label)) {
	b.snapAdd = append(b.snapAdd[:0], b.add...)
	b.snapDel = append(b.snapDel[:0], b.del...)
	for _, l := range b.base {
		if !slices.Contains(b.snapDel, l.Name) && !containsName(b.snapAdd, l.Name) {
			f(l)
		}
	}
	for _, a := range b.snapAdd {
		f(a)
	}
}

func containsName(ls []Label, n string) bool {
	for i := range ls {
		if ls[i].Name == n {
			return true
		}
	}
	return false
}

// Labels appends the resulting label set, sorted and without empty
// values, to dst[:0] and returns it; a nil dst allocates.
func (b *Builder) Labels(dst Labels) Labels {
	dst = dst[:0]
	if len(b.add) == 0 && len(b.del) == 0 {
		return append(dst, b.base...)
	}
	for _, l := range b.base {
		if slices.Contains(b.del, l.Name) || containsName(b.add, l.Name) {
			continue
		}
		dst = append(dst, l)
	}
	if len(b.add) == 0 {
		return dst
	}
	n := len(dst)
	dst = append(dst, b.add...)
	slices.SortFunc(dst[n:], func(x, y Label) int { return strings.Compare(x.Name, y.Name) })
	return mergeSorted(dst, n)
}

// mergeSorted merges the sorted runs ls[:n] and ls[n:] in place (names are
// distinct across the runs), by insertion from the back: the runs are short.
func mergeSorted(ls Labels, n int) Labels {
	for i := n; i < len(ls); i++ {
		for j := i; j > 0 && ls[j-1].Name > ls[j].Name; j-- {
			ls[j-1], ls[j] = ls[j], ls[j-1]
		}
	}
	return ls
}
