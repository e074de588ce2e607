package hostgen

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// This file holds what turns parsed fields into series names and labels,
// and the caches that keep that work out of the steady state.

// escapeMetricName turns name into what node_exporter's text output shows
// for it: client_golang accepts any valid UTF-8 name and the text format
// replaces each rune outside [a-zA-Z0-9_:] with '_'. ok is false for names
// that are not valid UTF-8, which node_exporter cannot emit at all.
func escapeMetricName(name string) (escaped string, ok bool) {
	if !utf8.ValidString(name) {
		return "", false
	}
	valid := true
	for i, r := range name {
		if !legacyNameRune(r, i) {
			valid = false
			break
		}
	}
	if valid {
		return name, true
	}
	b := make([]byte, 0, len(name))
	for i, r := range name {
		if legacyNameRune(r, i) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	return string(b), true
}

// legacyNameRune reports whether r may stand at byte offset i of a metric
// name of the classic [a-zA-Z_:][a-zA-Z0-9_:]* form.
func legacyNameRune(r rune, i int) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_' || r == ':' || (r >= '0' && r <= '9' && i > 0)
}

// validMetricSuffix reports whether b may follow a valid metric name prefix:
// only [a-zA-Z0-9_:].
func validMetricSuffix(b []byte) bool {
	for i, c := range b {
		if !legacyNameRune(rune(c), i+1) {
			return false
		}
	}
	return true
}

// numLabels caches the decimal strings of small non-negative integers (CPU
// numbers), so that label values are built once per generator and not on
// every scan.
type numLabels struct {
	s []string
}

// maxCachedLabel bounds the cache; larger numbers are formatted each time.
const maxCachedLabel = 1 << 16

// get returns strconv.Itoa(i).
func (c *numLabels) get(i int) string {
	if i < 0 || i >= maxCachedLabel {
		return strconv.Itoa(i)
	}
	for len(c.s) <= i {
		c.s = append(c.s, strconv.Itoa(len(c.s)))
	}
	return c.s[i]
}

// rowCache remembers, for each row (line position, device, ...) of a file,
// the key last seen there (a field name, a device name) and what was worked
// out for it: whether the filter keeps it, its series name, its series
// prefixes. /proc files keep their shape from one read to the next, so the
// work (a map lookup, a regular expression, escaping labels) is done again
// only for a row whose key changed, and a scan costs one comparison a row.
type rowCache[V any] []rowSlot[V]

type rowSlot[V any] struct {
	key []byte
	set bool
	val V
}

// at returns row i's value and whether it was worked out for key. On a
// miss the row now belongs to key and the caller fills the value in; the
// old value is left there so that its buffers can be reused.
func (c *rowCache[V]) at(i int, key []byte) (v *V, hit bool) {
	for len(*c) <= i {
		*c = append(*c, rowSlot[V]{})
	}
	r := &(*c)[i]
	if r.set && bytes.Equal(r.key, key) {
		return &r.val, true
	}
	r.key = append(r.key[:0], key...)
	r.set = true
	return &r.val, false
}

// lead is the fast way through a "key value" line for caches keyed by a
// line's first field: when line starts with the key row i holds, followed
// by ASCII white space, that key is the line's first field (a field holds
// no white space) and lead returns row i's value and the rest of the line
// after the key. ok is false otherwise, and the caller splits the line.
func (c rowCache[V]) lead(i int, line []byte) (v *V, rest []byte, ok bool) {
	if i >= len(c) {
		return nil, nil, false
	}
	r := &c[i]
	k := len(r.key)
	if !r.set || k == 0 || len(line) <= k || byteClass[line[k]] != classSpace || string(line[:k]) != string(r.key) {
		return nil, nil, false
	}
	return &r.val, line[k:], true
}

// truncate forgets the rows from n on, whose devices or lines went away.
func (c *rowCache[V]) truncate(n int) {
	if len(*c) > n {
		clear((*c)[n:])
		*c = (*c)[:n]
	}
}
