package promtext

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Reasons of a LineError. Those that come from a limit get it appended by
// Limits.explain.
const (
	reasonNUL               = "NUL byte"
	reasonLineTooLong       = "line too long"
	reasonNameStart         = "metric name must start with a letter, '_' or ':'"
	reasonNameChar          = "invalid character in metric name (want letters, digits, '_' or ':')"
	reasonNameTooLong       = "metric name too long"
	reasonMissingValue      = "missing value"
	reasonValue             = "invalid value (want a decimal number, NaN, Inf, +Inf or -Inf)"
	reasonValueRange        = "value out of float64 range"
	reasonTimestamp         = "invalid timestamp (want milliseconds since the epoch, as a decimal number)"
	reasonTimestampRange    = "timestamp out of int64 range"
	reasonTrailing          = "unexpected text after the value and timestamp"
	reasonLabelName         = "invalid label name (want [a-zA-Z_][a-zA-Z0-9_]*)"
	reasonLabelNameChar     = "invalid character in label name (want letters, digits or '_')"
	reasonLabelNameTooLong  = "label name too long"
	reasonReservedLabel     = "label __name__ is reserved for the metric name"
	reasonDuplicateLabel    = "duplicate label name"
	reasonTooManyLabels     = "too many labels"
	reasonMissingEquals     = "missing '=' after label name"
	reasonUnquotedValue     = "label value must be in double quotes"
	reasonEscape            = `invalid escape in label value (want \\, \" or \n)`
	reasonUTF8              = "invalid UTF-8 in label value"
	reasonUnclosedQuote     = "missing closing quote of label value"
	reasonLabelValueTooLong = "label value too long"
	reasonUnclosedLabels    = "missing '}' after labels"
	reasonMissingComma      = "missing ',' or '}' after label value"
)

// Byte classes, as tables: a lookup per byte is the hot loop of Check.
var (
	nameStart, nameChar   [256]bool // metric names
	labelStart, labelChar [256]bool // label names
	plainValue            [256]bool // label value bytes that stand for themselves
)

func init() {
	for c := 0; c < 256; c++ {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		digit := c >= '0' && c <= '9'
		labelStart[c] = letter
		labelChar[c] = letter || digit
		nameStart[c] = letter || c == ':'
		nameChar[c] = letter || digit || c == ':'
		plainValue[c] = c != 0 && c != '"' && c != '\\' && c < utf8.RuneSelf
	}
}

// parse checks line (without "\n"). It reports whether the line is a
// sample, or where (a byte offset) and why it is wrong.
func (c *checker) parse(l []byte) (sample bool, pos int, reason string) {
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	i := skipBlanks(l, 0)
	if i == len(l) {
		return false, 0, ""
	}
	if l[i] == '#' {
		if j := bytes.IndexByte(l, 0); j >= 0 {
			return false, j, reasonNUL
		}
		return false, 0, ""
	}
	j := c.name(l, i)
	switch {
	case j == i:
		return false, i, reasonNameStart
	case j-i > c.lim.MaxLabelValueBytes:
		return false, i, reasonNameTooLong
	}
	k := skipBlanks(l, j)
	switch {
	case k < len(l) && l[k] == '{':
		if k, pos, reason = c.labels(l, k+1); reason != "" {
			return false, pos, reason
		}
		k = skipBlanks(l, k)
	case k == j && j < len(l):
		return false, j, reasonNameChar
	}
	if k == len(l) {
		return false, k, reasonMissingValue
	}
	if j, reason = checkValue(l, k); reason != "" {
		return false, k, reason
	}
	k = skipBlanks(l, j)
	if k == len(l) {
		c.untimed++
		return true, 0, ""
	}
	if j, reason = checkTimestamp(l, k); reason != "" {
		return false, k, reason
	}
	if k = skipBlanks(l, j); k < len(l) {
		return false, k, reasonTrailing
	}
	return true, 0, ""
}

// name returns the end of the metric name at l[i:], i if there is none.
// Lines of one metric follow each other, so the name of the last line is
// tried first: a comparison is faster than a scan.
func (c *checker) name(l []byte, i int) int {
	if n := len(c.last); n > 0 && len(l)-i > n && string(l[i:i+n]) == string(c.last) && !nameChar[l[i+n]] {
		return i + n
	}
	if !nameStart[l[i]] {
		return i
	}
	j := i + 1
	for j < len(l) && nameChar[l[j]] {
		j++
	}
	if j-i <= cap(c.lastBuf) {
		c.last = append(c.lastBuf[:0], l[i:j]...)
	}
	return j
}

// labels checks the labels of l from i, just after '{', to the '}' and
// returns the offset after it.
func (c *checker) labels(l []byte, i int) (end, pos int, reason string) {
	c.names = c.names[:0]
	c.seen = 0
	for {
		i = skipBlanks(l, i)
		if i == len(l) {
			return 0, i, reasonUnclosedLabels
		}
		if l[i] == '}' {
			return i + 1, 0, ""
		}
		if !labelStart[l[i]] {
			return 0, i, reasonLabelName
		}
		j := i + 1
		for j < len(l) && labelChar[l[j]] {
			j++
		}
		if reason := c.addName(l, i, j); reason != "" {
			return 0, i, reason
		}
		k := skipBlanks(l, j)
		if k == len(l) || l[k] != '=' {
			if k == j && k < len(l) && l[k] != '"' && l[k] != ',' && l[k] != '}' {
				return 0, k, reasonLabelNameChar
			}
			return 0, k, reasonMissingEquals
		}
		k = skipBlanks(l, k+1)
		if k == len(l) || l[k] != '"' {
			return 0, k, reasonUnquotedValue
		}
		if k, pos, reason = c.labelValue(l, k+1); reason != "" {
			return 0, pos, reason
		}
		k = skipBlanks(l, k)
		if k == len(l) {
			return 0, k, reasonUnclosedLabels
		}
		switch l[k] {
		case ',':
			i = k + 1
		case '}':
			return k + 1, 0, ""
		default:
			return 0, k, reasonMissingComma
		}
	}
}

// addName records the label name l[i:j] of the current line, refusing a
// repeat. The quadratic search is cheaper than a map for the handful of
// labels a series has, and MaxLabels bounds it.
func (c *checker) addName(l []byte, i, j int) string {
	name := l[i:j]
	switch {
	case len(c.names) == c.lim.MaxLabels:
		return reasonTooManyLabels
	case len(name) > c.lim.MaxLabelNameBytes:
		return reasonLabelNameTooLong
	case string(name) == "__name__":
		return reasonReservedLabel
	}
	// Compare only names that share a bit of a small hash with an
	// earlier one: a series' label names rarely do.
	bit := uint64(1) << ((uint(name[0]) + 5*uint(name[len(name)-1]) + 3*uint(len(name))) & 63)
	if c.seen&bit != 0 {
		for _, s := range c.names {
			if string(l[s.lo:s.hi]) == string(name) {
				return reasonDuplicateLabel
			}
		}
	}
	c.seen |= bit
	c.names = append(c.names, span{i, j})
	return ""
}

// labelValue checks the label value of l from i, just after its opening
// quote, and returns the offset after the closing quote.
func (c *checker) labelValue(l []byte, i int) (end, pos int, reason string) {
	start := i
	escapes := 0
	for {
		if i = skipPlain(l, i); i == len(l) {
			return 0, start - 1, reasonUnclosedQuote
		}
		switch b := l[i]; {
		case b == '"':
			if i-start-escapes > c.lim.MaxLabelValueBytes {
				return 0, start, reasonLabelValueTooLong
			}
			return i + 1, 0, ""
		case b == '\\':
			if i+1 < len(l) && (l[i+1] == '\\' || l[i+1] == '"' || l[i+1] == 'n') {
				i += 2
				escapes++
				continue
			}
			return 0, i, reasonEscape
		case b == 0:
			return 0, i, reasonNUL
		default:
			r, size := utf8.DecodeRune(l[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, i, reasonUTF8
			}
			i += size
		}
	}
}

func skipBlanks(l []byte, i int) int {
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	return i
}

func tokenEnd(l []byte, i int) int {
	for i < len(l) && l[i] != ' ' && l[i] != '\t' {
		i++
	}
	return i
}

// checkValue checks the sample value at l[i:] and returns its end.
func checkValue(l []byte, i int) (end int, reason string) {
	if n, ok := scanNumber(l, i); ok {
		// Below 10^300, far from float64's maximum of about 1.8e308, no
		// parse is needed.
		if n.magnitude() > 300 && !parsesAsFloat(l[i:n.end]) {
			return n.end, reasonValueRange
		}
		return n.end, ""
	}
	end = tokenEnd(l, i)
	if isSpecial(l[i:end]) {
		return end, ""
	}
	return end, reasonValue
}

// checkTimestamp checks the timestamp at l[i:] and returns its end.
func checkTimestamp(l []byte, i int) (end int, reason string) {
	n, ok := scanNumber(l, i)
	switch {
	case !ok:
		return tokenEnd(l, i), reasonTimestamp
	case n.magnitude() <= 18:
		// Below 10^18, within int64 as milliseconds.
		return n.end, ""
	}
	b := l[i:n.end]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	if err != nil || math.Abs(f) >= 1<<63 {
		return n.end, reasonTimestampRange
	}
	return n.end, ""
}

func parsesAsFloat(b []byte) bool {
	// The string does not outlive the call.
	_, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	return err == nil
}

// number describes what scanNumber read.
type number struct {
	end       int // offset after the number
	intDigits int // digits before the point
	exp       int // the exponent, capped at ±maxExp
}

const maxExp = 1 << 20

// magnitude bounds the number's decimal exponent: its absolute value is
// below 10^magnitude.
func (n number) magnitude() int { return n.intDigits + n.exp }

// scanNumber reads a token -?(digits(.digits*)?|.digits)([eE][+-]?digits)?
// from l[i:], the decimal numbers that Go's ParseFloat and
// VictoriaMetrics' fastfloat both read. A blank or the end of the line
// must follow.
func scanNumber(l []byte, i int) (n number, ok bool) {
	if i < len(l) && l[i] == '-' {
		i++
	}
	d := i
	i = skipDigits(l, i)
	n.intDigits = i - d
	digits := n.intDigits
	if i < len(l) && l[i] == '.' {
		f := i + 1
		i = skipDigits(l, f)
		digits += i - f
	}
	if digits == 0 {
		return n, false
	}
	if i < len(l) && l[i]|0x20 == 'e' {
		i++
		neg := false
		if i < len(l) && (l[i] == '+' || l[i] == '-') {
			neg = l[i] == '-'
			i++
		}
		e := i
		if i = skipDigits(l, i); i == e {
			return n, false
		}
		for _, c := range l[e:i] {
			if n.exp = 10*n.exp + int(c-'0'); n.exp > maxExp {
				n.exp = maxExp
				break
			}
		}
		if neg {
			n.exp = -n.exp
		}
	}
	n.end = i
	return n, i == len(l) || l[i] == ' ' || l[i] == '\t'
}

// isSpecial reports NaN, Inf and Infinity in any case, the last two with
// an optional sign. Go's ParseFloat refuses a signed NaN.
func isSpecial(b []byte) bool {
	if len(b) < 3 {
		return false
	}
	signed := b[0] == '+' || b[0] == '-'
	if signed {
		b = b[1:]
	}
	return foldEqual(b, "inf") || foldEqual(b, "infinity") || !signed && foldEqual(b, "nan")
}

// foldEqual reports b == lower without regard to ASCII case; lower holds
// lower-case letters only.
func foldEqual(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}
