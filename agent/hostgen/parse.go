package hostgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/procfleet/procfleet/agent/procfile"
)

// This file holds the tokenizers, number parsers and error collection that
// every generator's parser uses. Each reproduces, byte for byte, the rule of
// the Go standard library function that node_exporter and procfs apply to
// the same input (bufio.ScanLines, strings.Fields, strings.Split,
// strconv.ParseFloat, strconv with base 0), so that odd input gives the
// same series, without allocating on good input.

// nextLine returns the first line of data and the rest, dropping a '\r'
// before the newline as bufio.ScanLines does: node_exporter and procfs read
// every line-based file of /proc with a bufio.Scanner.
func nextLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		line, rest = data[:i], data[i+1:]
	} else {
		line = data
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// Byte classes for the field splitters. /proc text is ASCII in practice,
// so the splitters look each byte up once and decode runes (the full
// unicode.IsSpace rule of strings.Fields) only after meeting a byte >= 0x80.
const (
	classWord  = iota // ASCII, not white space
	classSpace        // ASCII white space as unicode.IsSpace knows it
	classHigh         // starts a multi-byte rune (or is invalid UTF-8)
)

var byteClass = func() (t [256]uint8) {
	for _, c := range []byte{'\t', '\n', '\v', '\f', '\r', ' '} {
		t[c] = classSpace
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = classHigh
	}
	return t
}()

// spaces8 is eight spaces read as a little-endian word: the runs of spaces
// that pad the columns of most /proc files are skipped eight at a time.
const spaces8 = 0x2020202020202020

// skipASCIISpace returns the index of the first byte at or after i that is
// not ASCII white space.
func skipASCIISpace(line []byte, i int) int {
	for i < len(line) && byteClass[line[i]] == classSpace {
		i++
		if i < len(line) && line[i] == ' ' {
			for i+8 <= len(line) && binary.LittleEndian.Uint64(line[i:]) == spaces8 {
				i += 8
			}
		}
	}
	return i
}

// skipASCIIWord returns the index of the first byte at or after i that is
// not an ASCII non-space byte.
func skipASCIIWord(line []byte, i int) int {
	for i < len(line) && byteClass[line[i]] == classWord {
		i++
	}
	return i
}

// splitFields splits line into dst[:0] exactly as strings.Fields splits a
// string: at runs of Unicode white space. It allocates only when dst is too
// short, so callers keep dst between calls.
func splitFields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for i := skipASCIISpace(line, 0); i < len(line); i = skipASCIISpace(line, i) {
		start := i
		i = skipASCIIWord(line, i)
		if i < len(line) && byteClass[line[i]] == classHigh {
			return splitFieldsUnicode(line, dst)
		}
		dst = append(dst, line[start:i])
	}
	return dst
}

// splitFieldsUnicode is splitFields for a line that holds a byte >= 0x80.
func splitFieldsUnicode(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for i := skipSpace(line, 0); i < len(line); i = skipSpace(line, i) {
		start := i
		i = skipWord(line, i)
		dst = append(dst, line[start:i])
	}
	return dst
}

// firstTwoFields returns the first two fields strings.Fields would give for
// line, and whether there are at least two.
func firstTwoFields(line []byte) (a, b []byte, ok bool) {
	i := skipASCIISpace(line, 0)
	j := skipASCIIWord(line, i)
	k := skipASCIISpace(line, j)
	l := skipASCIIWord(line, k)
	if l < len(line) && byteClass[line[l]] == classHigh {
		// Every ASCII scan above stops at a byte >= 0x80, so the
		// last one does when any of them did.
		i = skipSpace(line, 0)
		j = skipWord(line, i)
		k = skipSpace(line, j)
		l = skipWord(line, k)
	}
	if k == len(line) {
		return nil, nil, false
	}
	return line[i:j], line[k:l], true
}

// spaceAt reports whether a Unicode space starts at line[i] and how long
// the rune there is.
func spaceAt(line []byte, i int) (space bool, size int) {
	if c := line[i]; c < utf8.RuneSelf {
		return byteClass[c] == classSpace, 1
	}
	r, size := utf8.DecodeRune(line[i:])
	return unicode.IsSpace(r), size
}

// skipSpace returns the index of the first byte at or after i that does
// not start a Unicode space.
func skipSpace(line []byte, i int) int {
	for i < len(line) {
		sp, size := spaceAt(line, i)
		if !sp {
			return i
		}
		i += size
	}
	return i
}

// skipWord returns the index of the first Unicode space at or after i.
func skipWord(line []byte, i int) int {
	for i < len(line) {
		sp, size := spaceAt(line, i)
		if sp {
			return i
		}
		i += size
	}
	return i
}

// cutUint parses the decimal digits at the start of b, which must be at
// least one and fit a uint64, and returns their value and what follows.
func cutUint(b []byte) (u uint64, rest []byte, ok bool) {
	i := 0
	for i < len(b) {
		d := b[i] - '0'
		if d > 9 {
			break
		}
		u = u*10 + uint64(d)
		i++
	}
	if i > 19 {
		// Twenty digits and more may have overflowed: take the careful way.
		u, ok = decimalUint(b[:i])
		return u, b[i:], ok
	}
	return u, b[i:], i > 0
}

// appendUints parses up to max fields of line, split as strings.Fields
// splits, as decimal uint64s, appends them to dst and returns the rest of
// the line after them. This is the fast way through the counter columns of
// /proc files, splitting and parsing in one pass. ok is false when it met a
// field it does not take (not plain decimal, or with a byte >= 0x80 next to
// it): the caller then goes the general way, splitFields and parseUint,
// which also words the error.
func appendUints(dst []uint64, line []byte, max int) (out []uint64, rest []byte, ok bool) {
	i, n := 0, len(line)
	for ; max > 0; max-- {
		i = skipASCIISpace(line, i)
		if i == n {
			break
		}
		start := i
		var u uint64
		for i < n {
			d := line[i] - '0'
			if d > 9 {
				break
			}
			u = u*10 + uint64(d)
			i++
		}
		if i-start > 19 {
			// Twenty digits and more may have overflowed.
			if u, ok = decimalUint(line[start:i]); !ok {
				return dst, line[start:], false
			}
		}
		if i == start || i < n && byteClass[line[i]] != classSpace {
			return dst, line[start:], false
		}
		dst = append(dst, u)
	}
	return dst, line[i:], true
}

// splitSpace splits line at every single space into dst[:0], as
// strings.Split(line, " ") does: two spaces in a row give an empty field.
func splitSpace(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return append(dst, line)
		}
		dst = append(dst, line[:i])
		line = line[i+1:]
	}
}

// decimalUint parses b as plain decimal digits that fit a uint64, the rule
// of strconv.ParseUint(b, 10, 64) and procfile.ParseUint. It builds no
// error, so that trying it first on input that may be something else costs
// no allocation; callers that report the failure ask procfile.ParseUint why.
func decimalUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	if len(b) <= 19 {
		// Nineteen digits cannot overflow.
		for _, c := range b {
			d := c - '0'
			if d > 9 {
				return 0, false
			}
			n = n*10 + uint64(d)
		}
		return n, true
	}
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseUint parses b as strconv.ParseUint(b, 10, 64) would, with
// procfile.ParseUint's errors.
func parseUint(b []byte) (uint64, error) {
	if u, ok := decimalUint(b); ok {
		return u, nil
	}
	return procfile.ParseUint(b)
}

// parseFloat parses b as strconv.ParseFloat(string(b), 64) would; like
// node_exporter it takes an out-of-range value (±Inf) for an error. Plain
// digits take a fast path through an integer: the conversion of a uint64 to
// float64 rounds to nearest even just as ParseFloat rounds the decimal
// string, so both give the same value.
func parseFloat(b []byte) (float64, error) {
	if u, ok := decimalUint(b); ok {
		return float64(u), nil
	}
	return procfile.ParseFloat(b)
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

// base0Decimal reports whether b, if it is plain digits, means the same in
// base 0 as in base 10: only a leading 0 (octal) tells them apart.
func base0Decimal(b []byte) bool {
	return len(b) > 0 && (b[0] != '0' || len(b) == 1)
}

// parseUintBase0 parses b as strconv.ParseUint(string(b), 0, 64) would
// (the rule procfs applies to /proc/meminfo): a leading 0 means octal, 0x
// hex, and underscores may separate digits. Decimal input allocates
// nothing.
func parseUintBase0(b []byte) (uint64, error) {
	if base0Decimal(b) {
		if u, ok := decimalUint(b); ok {
			return u, nil
		}
	}
	if len(b) == 0 {
		return 0, errors.New("empty value")
	}
	u, err := strconv.ParseUint(unsafe.String(&b[0], len(b)), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an unsigned integer", b)
	}
	return u, nil
}

// parseIntBase0 parses b as strconv.ParseInt(string(b), 0, 64) would (the
// rule procfs applies to sockstat values, so "010" is octal 8). Decimal
// input allocates nothing.
func parseIntBase0(b []byte) (int64, error) {
	if base0Decimal(b) {
		if u, ok := decimalUint(b); ok && u <= 1<<63-1 {
			return int64(u), nil
		}
	}
	if len(b) == 0 {
		return 0, errors.New("empty value")
	}
	v, err := strconv.ParseInt(unsafe.String(&b[0], len(b)), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", b)
	}
	return v, nil
}

// errEmpty is returned for a file that is empty but must hold a header.
var errEmpty = errors.New("file is empty")

// lineErrs keeps the first parse error of one file and counts the others,
// so that a parser can skip a bad line, go on with the next and still tell
// what was wrong and where, with one error value however many lines are bad.
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
