// Package labels holds Prometheus label sets as procfleet handles them: a
// sorted slice of name/value pairs, and a Builder that changes one without
// copying it, with the semantics of Prometheus' labels.Builder (an empty
// value is the same as no label; Range visits labels in the order
// Prometheus' does). It is part of the prom tree (see package prom).
package labels

import (
	"slices"
	"strconv"
	"strings"
)

// Label is one name/value pair.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by name, each name once. A Labels is a plain
// value: safe to read from several goroutines, not to change while they
// read it. The functions of this package never change a Labels they are
// given.
type Labels []Label

// FromStrings returns the label set of name/value pairs ss, sorted; a
// later pair wins over an earlier one of the same name. It panics on an odd
// number of strings.
func FromStrings(ss ...string) Labels {
	if len(ss)%2 != 0 {
		panic("labels.FromStrings: odd number of strings")
	}
	ls := make(Labels, 0, len(ss)/2)
	for i := 0; i < len(ss); i += 2 {
		ls = append(ls, Label{Name: ss[i], Value: ss[i+1]})
	}
	return FromUnsorted(ls)
}

// FromUnsorted sorts ls in place by name and removes repeated names, the
// last of them winning, and returns it.
func FromUnsorted(ls []Label) Labels {
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	out := ls[:0]
	for i, l := range ls {
		if i+1 < len(ls) && ls[i+1].Name == l.Name {
			continue
		}
		out = append(out, l)
	}
	return Labels(out)
}

// Get returns the value of the label called name, "" if there is none.
func (ls Labels) Get(name string) string {
	if i, ok := ls.index(name); ok {
		return ls[i].Value
	}
	return ""
}

// Has reports whether ls has a label called name, whatever its value
// (Prometheus' Labels.Has: a label with an empty value is there).
func (ls Labels) Has(name string) bool {
	_, ok := ls.index(name)
	return ok
}

func (ls Labels) index(name string) (int, bool) {
	if len(ls) <= 16 {
		for i := range ls {
			if ls[i].Name == name {
				return i, true
			}
		}
		return 0, false
	}
	return slices.BinarySearchFunc(ls, name, func(l Label, n string) int { return strings.Compare(l.Name, n) })
}

// WithoutEmpty returns ls without its labels of empty value, sharing ls'
// array when there are none.
func (ls Labels) WithoutEmpty() Labels {
	if !slices.ContainsFunc(ls, func(l Label) bool { return l.Value == "" }) {
		return ls
	}
	out := make(Labels, 0, len(ls))
	for _, l := range ls {
		if l.Value != "" {
			out = append(out, l)
		}
	}
	return out
}

// Equal reports whether ls and o hold the same labels.
func (ls Labels) Equal(o Labels) bool { return slices.Equal(ls, o) }

// String writes ls as {a="1", b="2"}, values quoted as Go strings.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// IsValidName reports whether name is a label name in Prometheus' legacy
// character set, [a-zA-Z_][a-zA-Z0-9_]*: the names the text exposition
// format and VictoriaMetrics' import take unquoted. procfleet validates
// label names this way (Prometheus with metric_name_validation_scheme:
// legacy).
func IsValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
