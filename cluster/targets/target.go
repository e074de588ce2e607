package targets

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidTarget reports a target that cannot be published: an empty
// address, an empty label name, a label name given twice.
var ErrInvalidTarget = errors.New("targets: invalid target")

// Label is a target label, after relabeling.
type Label struct {
	Name, Value string
}

// Target is a resolved scrape target of a job, as discovery publishes it:
// its address (`__address__` after relabeling) and its other labels.
type Target struct {
	// Address is host:port, or whatever `__address__` became.
	Address string
	// Labels are the target's labels but the address, sorted by name in
	// a canonical target (see Canonical).
	Labels []Label
}

// ID returns the target's ID within job, for Assign and Phase: the job
// name, a NUL, the address, a NUL, and 32 hex digits of the SHA-256 of
// the labels (taken in name order whatever their order in t). Two targets
// of a job that differ only in labels have different IDs; the ID is the
// same on every member and in every procfleet version. It is a pure
// function.
func (t Target) ID(job string) string {
	ls := t.Labels
	if !slices.IsSortedFunc(ls, compareLabel) {
		ls = slices.Clone(ls)
		slices.SortFunc(ls, compareLabel)
	}
	h := sha256.New()
	var buf []byte
	for _, l := range ls {
		buf = appendString(buf[:0], l.Name)
		buf = appendString(buf, l.Value)
		h.Write(buf)
	}
	var sum [sha256.Size]byte
	return job + "\x00" + t.Address + "\x00" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Canonical returns targets in canonical form, in a new slice: each
// target's labels sorted by name (nil when none), the targets sorted by
// address and then by labels, exact duplicates dropped. It shares the
// strings, and the label slices that are in order already (it never
// writes to them). It returns ErrInvalidTarget for an empty address, an
// empty label name or a label name given twice in one target. It is a
// pure function.
func Canonical(targets []Target) ([]Target, error) {
	out := make([]Target, len(targets))
	for i, t := range targets {
		if t.Address == "" {
			return nil, fmt.Errorf("%w: target %d has an empty address", ErrInvalidTarget, i)
		}
		ls := t.Labels
		if !slices.IsSortedFunc(ls, compareLabel) {
			ls = slices.Clone(ls)
			slices.SortFunc(ls, compareLabel)
		}
		for k, l := range ls {
			if l.Name == "" {
				return nil, fmt.Errorf("%w: target %q has a label with an empty name", ErrInvalidTarget, t.Address)
			}
			if k > 0 && ls[k-1].Name == l.Name {
				return nil, fmt.Errorf("%w: target %q has label %q twice", ErrInvalidTarget, t.Address, l.Name)
			}
		}
		if len(ls) == 0 {
			ls = nil
		}
		out[i] = Target{Address: t.Address, Labels: ls[:len(ls):len(ls)]}
	}
	slices.SortFunc(out, CompareTargets)
	return slices.CompactFunc(out, func(a, b Target) bool { return CompareTargets(a, b) == 0 }), nil
}

// CompareTargets orders canonical targets: by address, then by labels
// (name, then value, label by label; a prefix first).
func CompareTargets(a, b Target) int {
	if c := strings.Compare(a.Address, b.Address); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Labels, b.Labels, compareLabel2)
}

// compareLabel orders labels by name.
func compareLabel(a, b Label) int { return strings.Compare(a.Name, b.Name) }

// compareLabel2 orders labels by name, then value.
func compareLabel2(a, b Label) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

// appendString appends s with its length as a uvarint before it.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
