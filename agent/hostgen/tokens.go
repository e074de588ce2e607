package hostgen

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// This file holds the tokenizers and number parsers shared by the network
// and disk generators. Each one reproduces, byte for byte, the rule of the
// Go standard library function that node_exporter and procfs use on the same
// input (bufio.ScanLines, strings.Fields, strings.Split, strconv with base
// 0), so that odd input gives the same series, without allocating.

// pathZ returns path with a NUL byte appended, the form
// procfile.Reader.ReadFullZ takes, built once so that reads allocate nothing.
func pathZ(path string) []byte { return append([]byte(path), 0) }

// scanLine returns the first line of data and the rest, dropping a '\r'
// before the newline as bufio.ScanLines does.
func scanLine(data []byte) (line, rest []byte) {
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

// asciiSpaceTab marks the ASCII bytes unicode.IsSpace accepts.
var asciiSpaceTab = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// spaceAt reports whether a Unicode space starts at line[i] and how long
// the rune there is.
func spaceAt(line []byte, i int) (space bool, size int) {
	c := line[i]
	if c < utf8.RuneSelf {
		return asciiSpaceTab[c], 1
	}
	r, size := utf8.DecodeRune(line[i:])
	return unicode.IsSpace(r), size
}

// unicodeFields splits line at runs of Unicode white space into dst[:0],
// exactly as strings.Fields does, and allocates only when dst is too short.
// ASCII bytes take a table lookup; only bytes >= 0x80 decode a rune.
func unicodeFields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	i, n := 0, len(line)
	for i < n {
		for i < n {
			if c := line[i]; c < utf8.RuneSelf {
				if !asciiSpaceTab[c] {
					break
				}
				i++
				continue
			}
			sp, size := spaceAt(line, i)
			if !sp {
				break
			}
			i += size
		}
		if i == n {
			break
		}
		start := i
		for i < n {
			if c := line[i]; c < utf8.RuneSelf {
				if asciiSpaceTab[c] {
					break
				}
				i++
				continue
			}
			sp, size := spaceAt(line, i)
			if sp {
				break
			}
			i += size
		}
		dst = append(dst, line[start:i])
	}
	return dst
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

// trimUnicodeSpace trims Unicode white space at both ends, as
// strings.TrimSpace does.
func trimUnicodeSpace(b []byte) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if !unicode.IsSpace(r) {
			break
		}
		b = b[size:]
	}
	for len(b) > 0 {
		r, size := utf8.DecodeLastRune(b)
		if !unicode.IsSpace(r) {
			break
		}
		b = b[:len(b)-size]
	}
	return b
}

// allDigits reports whether b is a non-empty run of ASCII digits.
func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseFloatLikeStrconv gives what strconv.ParseFloat(string(b), 64) gives.
// A plain unsigned integer takes a fast path; float64(uint64) rounds to
// nearest-even exactly as ParseFloat does, so the two agree on every value.
func parseFloatLikeStrconv(b []byte) (float64, error) {
	if len(b) > 0 && len(b) <= 19 {
		// Up to 19 digits cannot overflow uint64.
		var u uint64
		i := 0
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				break
			}
			u = u*10 + uint64(c)
		}
		if i == len(b) {
			return float64(u), nil
		}
	}
	if len(b) == 0 {
		return 0, fmt.Errorf("empty value")
	}
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil {
		// Out-of-range values are still returned as ±Inf by ParseFloat but
		// node_exporter treats them as errors too.
		return 0, fmt.Errorf("%q is not a number", string(b))
	}
	return v, nil
}

// parseIntBase0 gives what strconv.ParseInt(string(b), 0, 64) gives, the
// rule procfs applies to sockstat values (so "010" is octal 8).
func parseIntBase0(b []byte) (int64, error) {
	if len(b) > 0 && len(b) <= 18 && (b[0] != '0' || len(b) == 1) && allDigits(b) {
		var n int64
		for _, c := range b {
			n = n*10 + int64(c-'0')
		}
		return n, nil
	}
	if len(b) == 0 {
		return 0, fmt.Errorf("empty value")
	}
	v, err := strconv.ParseInt(unsafe.String(&b[0], len(b)), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", string(b))
	}
	return v, nil
}

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

func legacyNameRune(r rune, i int) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_' || r == ':' || (r >= '0' && r <= '9' && i > 0)
}

// lineError is a parse error that says which file and line it comes from.
func lineError(path string, line int, format string, args ...any) error {
	return fmt.Errorf("parse %s line %d: %s", path, line, fmt.Sprintf(format, args...))
}

// errorList keeps the first parse error of a pass and counts the others, so
// that one bad file yields one error value however many lines are bad.
type errorList struct {
	first error
	more  int
}

func (e *errorList) add(err error) {
	if err == nil {
		return
	}
	if e.first == nil {
		e.first = err
		return
	}
	e.more++
}

func (e *errorList) err() error {
	if e.first == nil || e.more == 0 {
		return e.first
	}
	return fmt.Errorf("%w (and %d more bad lines)", e.first, e.more)
}
