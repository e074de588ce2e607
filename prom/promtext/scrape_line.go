package promtext

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Reasons of a scrape's LineError, besides those Check shares.
const (
	reasonLeadingBlank  = "blanks before the metric name (Prometheus takes them into the name, which is then not valid)"
	reasonLabelStart    = "expected a label name, a quoted name or '}'"
	reasonNameTwice     = "metric name given twice"
	reasonNoName        = "metric name not set"
	reasonTimestampInt  = "invalid timestamp (want milliseconds since the epoch: decimal digits only)"
	reasonMetaName      = "expected a metric name after HELP or TYPE"
	reasonMetaType      = "invalid metric type (want counter, gauge, histogram, summary or untyped, after one blank)"
	reasonHelpUTF8      = "invalid UTF-8 in HELP text"
	reasonScrapedEscape = "invalid escape at the end of a label value"
)

// rawLabel is a label of the current line, as written.
type rawLabel struct {
	name, value span // value: inside the quotes, escapes as written
	quoted      bool // the name is in quotes
	escapes     uint8
}

// Escapes found in a quoted string.
const (
	escNone    uint8 = iota
	escPlain         // only \\, \" and \n, which VictoriaMetrics reads as Prometheus does
	escLiteral       // others too, which both keep as a backslash and a character
)

// rawSample is the sample line being handled.
type rawSample struct {
	series      span // from the line's start to the end of its name or labels: the key of Prometheus' scrape cache
	name        span
	nameQuoted  bool
	nameEscapes uint8
	labels      []rawLabel
	brace       int // offset of '{' after a name that is not quoted, -1 if none
	close       int // offset of the '}', -1 if none
	value       span
	blanks      bool // blanks before the metric name, which Prometheus takes into it
	ts          int64
	hasTS       bool
}

// comment checks a comment line, l[i] being '#': HELP and TYPE lines as
// Prometheus' lexer reads them, other comments skipped.
func (s *scrapeState) comment(l []byte, i int) (pos int, reason string) {
	k := skipBlanks(l, i+1)
	if k == i+1 {
		return 0, ""
	}
	typ := hasWord(l, k, "TYPE")
	if !typ && !hasWord(l, k, "HELP") {
		return 0, ""
	}
	m := skipBlanks(l, k+4)
	n := m
	switch {
	case m < len(l) && l[m] == '"':
		end, _, ok := quoted(l, m)
		if !ok {
			return m, reasonUnclosedQuote
		}
		n = end
	case m < len(l) && nameStart[l[m]]:
		for n = m + 1; n < len(l) && nameChar[l[n]]; n++ {
		}
	default:
		return m, reasonMetaName
	}
	var text []byte
	if len(l)-n > 1 {
		text = l[n+1:]
	}
	if !typ {
		if !utf8.Valid(text) {
			return n, reasonHelpUTF8
		}
		return 0, ""
	}
	switch string(text) {
	case "histogram":
		s.mtype = typeHistogram
	case "summary":
		s.mtype = typeSummary
	case "counter", "gauge", "untyped":
		s.mtype = typeOther
	default:
		return n, reasonMetaType
	}
	return 0, ""
}

// hasWord reports whether l[i:] starts with w and a blank.
func hasWord(l []byte, i int, w string) bool {
	return len(l)-i > len(w) && string(l[i:i+len(w)]) == w && (l[i+len(w)] == ' ' || l[i+len(w)] == '\t')
}

// sample reads the sample line l into s.smp; i is its first byte that is
// not a blank.
func (s *scrapeState) sample(l []byte, i int) (pos int, reason string) {
	smp := &s.smp
	smp.labels = smp.labels[:0]
	smp.name = span{-1, -1}
	smp.nameQuoted, smp.nameEscapes = false, escNone
	smp.brace, smp.close = -1, -1
	smp.blanks = i > 0 && l[i] != '{'
	k := i
	switch {
	case l[i] == '{':
		var end int
		if end, pos, reason = s.labels(l, i+1); reason != "" {
			return pos, reason
		}
		if smp.name.lo < 0 {
			return i, reasonNoName
		}
		k = end
	case nameStart[l[i]]:
		j := i + 1
		for j < len(l) && nameChar[l[j]] {
			j++
		}
		smp.name, k = span{i, j}, j
		if b := skipBlanks(l, j); b < len(l) && l[b] == '{' {
			smp.brace = b
			var end int
			if end, pos, reason = s.labels(l, b+1); reason != "" {
				return pos, reason
			}
			k = end
		}
	default:
		return i, reasonNameStart
	}
	smp.series = span{0, k}
	return s.suffix(l, k)
}

// suffix reads the value and the timestamp after the series, from k.
func (s *scrapeState) suffix(l []byte, k int) (pos int, reason string) {
	smp := &s.smp
	v := skipBlanks(l, k)
	e := v
	for e < len(l) && l[e] != ' ' && l[e] != '\t' && l[e] != '{' {
		e++
	}
	if e == v {
		return v, reasonMissingValue
	}
	smp.value = span{v, e}
	if !validValue(l[v:e]) {
		return v, reasonValue
	}
	smp.hasTS = false
	t := skipBlanks(l, e)
	if t == len(l) {
		return 0, ""
	}
	d := skipDigits(l, t)
	if d == t {
		return t, reasonTimestampInt
	}
	if skipBlanks(l, d) != len(l) {
		return skipBlanks(l, d), reasonTrailing
	}
	ts, ok := parseTimestamp(l[t:d])
	if !ok {
		return t, reasonTimestampRange
	}
	smp.ts, smp.hasTS = ts, true
	return 0, ""
}

// labels reads the labels of l from i, just after '{', to the '}' and
// returns the offset after it, as Prometheus' lexer reads them: a comma
// after each label is optional, a quoted string followed by ',' or '}'
// is the metric name.
func (s *scrapeState) labels(l []byte, i int) (end, pos int, reason string) {
	smp := &s.smp
	for {
		i = skipBlanks(l, i)
		if i == len(l) {
			return 0, i, reasonUnclosedLabels
		}
		var lb rawLabel
		var j int
		switch c := l[i]; {
		case c == '}':
			smp.close = i
			return i + 1, 0, ""
		case labelStart[c]:
			j = i + 1
			for j < len(l) && labelChar[l[j]] {
				j++
			}
			lb.name = span{i, j}
		case c == '"':
			var esc uint8
			var ok bool
			if j, esc, ok = quoted(l, i); !ok {
				return 0, i, reasonUnclosedQuote
			}
			if k := skipBlanks(l, j); k < len(l) && (l[k] == ',' || l[k] == '}') {
				if smp.name.lo >= 0 {
					return 0, i, reasonNameTwice
				}
				smp.name, smp.nameQuoted, smp.nameEscapes = span{i + 1, j - 1}, true, esc
				if l[k] == '}' {
					smp.close = k
					return k + 1, 0, ""
				}
				i = k + 1
				continue
			}
			lb.name, lb.quoted, lb.escapes = span{i + 1, j - 1}, true, esc
		default:
			return 0, i, reasonLabelStart
		}
		k := skipBlanks(l, j)
		if k == len(l) || l[k] != '=' {
			return 0, k, reasonMissingEquals
		}
		k = skipBlanks(l, k+1)
		if k == len(l) || l[k] != '"' {
			return 0, k, reasonUnquotedValue
		}
		j, esc, ok := quoted(l, k)
		if !ok {
			return 0, k, reasonUnclosedQuote
		}
		if esc == escInvalid {
			return 0, k, reasonUTF8
		}
		lb.value, lb.escapes = span{k + 1, j - 1}, max(lb.escapes, esc)
		smp.labels = append(smp.labels, lb)
		if k = skipBlanks(l, j); k < len(l) && l[k] == ',' {
			k++
		}
		i = k
	}
}

// escInvalid is what quoted reports for a string that is not valid UTF-8.
const escInvalid uint8 = 255

// quoted reads the quoted string at l[i] ('"'): any byte but '"' and '\\',
// or '\\' and any byte. It returns the offset after the closing quote and
// the escapes found (escInvalid for invalid UTF-8), or false when the line
// ends first.
func quoted(l []byte, i int) (end int, esc uint8, ok bool) {
	j := i + 1
	for {
		if j = skipPlain(l, j); j == len(l) {
			return 0, esc, false
		}
		switch b := l[j]; {
		case b == '"':
			return j + 1, esc, true
		case b == '\\':
			if j+1 == len(l) {
				return 0, esc, false
			}
			switch c := l[j+1]; {
			case c == '\\' || c == '"' || c == 'n':
				esc = max(esc, escPlain)
			case c == 0:
				return 0, esc, false // see below
			case c >= utf8.RuneSelf:
				// A backslash before a multi-byte character: the whole
				// character is escaped, and must be valid UTF-8.
				r, size := utf8.DecodeRune(l[j+1:])
				if r == utf8.RuneError && size == 1 {
					return invalidUTF8(l, j+1)
				}
				esc = max(esc, escLiteral)
				j += size - 1
			default:
				esc = max(esc, escLiteral)
			}
			j += 2
		case b == 0:
			// Prometheus keeps a NUL in a label value; VictoriaMetrics'
			// import does not take it.
			return 0, esc, false
		default:
			r, size := utf8.DecodeRune(l[j:])
			if r == utf8.RuneError && size == 1 {
				return invalidUTF8(l, j)
			}
			j += size
		}
	}
}

// invalidUTF8 ends a quoted string that holds invalid UTF-8 at l[j]: at
// the next quote, reported as escInvalid, or not closed.
func invalidUTF8(l []byte, j int) (end int, esc uint8, ok bool) {
	for j < len(l) && l[j] != '"' {
		j++
	}
	if j == len(l) {
		return 0, escInvalid, false
	}
	return j + 1, escInvalid, true
}

// validValue reports whether v is a sample value Prometheus' text parser
// takes: what strconv.ParseFloat takes, but for 'p', 'P' and '_', and
// without a range error.
func validValue(v []byte) bool {
	if n, ok := scanNumber(v, 0); ok && n.end == len(v) && n.magnitude() <= 300 {
		return true
	}
	for _, c := range v {
		if c == 'p' || c == 'P' || c == '_' {
			return false
		}
	}
	_, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
	return err == nil
}

// parseTimestamp parses decimal digits as strconv.ParseInt does.
func parseTimestamp(d []byte) (int64, bool) {
	if len(d) <= 18 {
		var ts int64
		for _, c := range d {
			ts = 10*ts + int64(c-'0')
		}
		return ts, true
	}
	ts, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(d), len(d)), 10, 64)
	return ts, err == nil
}
