package hostgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/procfleet/procfleet/agent/procfile"
)

// This file holds the small parsing helpers shared by the generators of
// stat.go, meminfo.go, loadavg.go, vmstat.go, filefd.go, pressure.go,
// interrupts.go and softirqs.go. They reproduce the exact semantics of the
// standard library calls that node_exporter and procfs use
// (strings.Fields, strconv.ParseFloat), without allocating.

// fieldsClass classifies bytes for splitFields: 0 ends no field, 1 is ASCII
// white space as strings.Fields knows it, 2 starts a multi-byte rune that
// must be decoded to know.
var fieldsClass = func() (t [256]uint8) {
	for _, c := range []byte{'\t', '\n', '\v', '\f', '\r', ' '} {
		t[c] = 1
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = 2
	}
	return t
}()

// splitFields splits line into dst[:0] exactly as strings.Fields splits a
// string: at runs of Unicode white space. It allocates only when dst is too
// short, so callers keep dst between calls.
func splitFields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	i := 0
	for i < len(line) {
		// Skip white space; runs of plain spaces, which pad the columns
		// of most /proc files, go eight bytes at a time.
		for i+8 <= len(line) && binary.LittleEndian.Uint64(line[i:]) == 0x2020202020202020 {
			i += 8
		}
		for i < len(line) {
			c := line[i]
			if c == ' ' {
				i++
				continue
			}
			k := fieldsClass[c]
			if k == 0 {
				break
			}
			if k == 2 {
				r, size := utf8.DecodeRune(line[i:])
				if !unicode.IsSpace(r) {
					break
				}
				i += size
				continue
			}
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) {
			c := line[i]
			if c > ' ' && c < utf8.RuneSelf {
				i++
				continue
			}
			k := fieldsClass[c]
			if k == 0 {
				i++
				continue
			}
			if k == 2 {
				r, size := utf8.DecodeRune(line[i:])
				if !unicode.IsSpace(r) {
					i += size
					continue
				}
			}
			break
		}
		dst = append(dst, line[start:i])
	}
	return dst
}

// nextLine returns the first line of data (without its newline) and the
// rest, as procfile.NextLine does, with a vectorised search.
func nextLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i], data[i+1:]
	}
	return data, nil
}

// parseFloatLike parses b as strconv.ParseFloat(string(b), 64) would. Plain
// decimal digits, the common case, take a fast path through an integer: the
// conversion of a uint64 to float64 rounds to nearest even just as
// ParseFloat rounds the decimal string, so both give the same value.
func parseFloatLike(b []byte) (float64, error) {
	if u, ok := decimalUint(b); ok {
		return float64(u), nil
	}
	return procfile.ParseFloat(b)
}

// decimalUint parses b as plain decimal digits that fit a uint64. Unlike
// procfile.ParseUint it builds no error, so that trying it first on input
// that is often something else (a float, a name) costs no allocation.
func decimalUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// isAtoi reports whether strconv.Atoi accepts b: an optional sign, decimal
// digits, and a value in the int64 range.
func isAtoi(b []byte) bool {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	u, ok := decimalUint(b)
	if !ok {
		return false
	}
	if neg {
		return u <= 1<<63
	}
	return u <= 1<<63-1
}

// parseUintBase0 parses b as strconv.ParseUint(string(b), 0, 64) would (the
// base procfs uses for /proc/meminfo): a leading 0 means octal, 0x hex, and
// underscores may separate digits. Ordinary decimal input allocates nothing.
func parseUintBase0(b []byte) (uint64, error) {
	if len(b) > 0 && (b[0] != '0' || len(b) == 1) {
		if u, ok := decimalUint(b); ok {
			return u, nil
		}
	}
	u, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an unsigned integer", b)
	}
	return u, nil
}

// lineErrs keeps the first parse error of one file and counts the others, so
// that a parser can skip a bad line, go on with the next and still tell what
// was wrong and where.
type lineErrs struct {
	file  string
	first error
	n     int
}

// addf records a problem on line (1-based).
func (e *lineErrs) addf(line int, format string, args ...any) {
	e.n++
	if e.first == nil {
		e.first = fmt.Errorf("parse %s line %d: %s", e.file, line, fmt.Sprintf(format, args...))
	}
}

// add records err on line (1-based).
func (e *lineErrs) add(line int, err error) {
	e.n++
	if e.first == nil {
		e.first = fmt.Errorf("parse %s line %d: %w", e.file, line, err)
	}
}

// err returns the first error, noting how many more lines were bad.
func (e *lineErrs) err() error {
	switch {
	case e.first == nil:
		return nil
	case e.n > 1:
		return fmt.Errorf("%w (and %d more bad lines)", e.first, e.n-1)
	}
	return e.first
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

// errEmpty is returned for a file that is empty but must hold a header.
var errEmpty = errors.New("file is empty")

// validMetricSuffix reports whether b may follow a valid metric name prefix:
// only [a-zA-Z0-9_:].
func validMetricSuffix(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// zpath returns p followed by a NUL byte, the form procfile.Reader.ReadZ
// takes, built once per generator so that reads allocate nothing.
func zpath(p string) []byte {
	return append([]byte(p), 0)
}
