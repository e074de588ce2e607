package remotewrite

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// encLabel is one label of the line being parsed: name and value as
// offsets into Encoder.scratch (the value unescaped there).
type encLabel struct {
	n0, n1, v0, v1 int32
}

// encSyntaxError is a line the encoder cannot read.
type encSyntaxError struct {
	line   int
	reason string
}

func (e *encSyntaxError) Error() string {
	return fmt.Sprintf("line %d: %s", e.line, e.reason)
}

func encFail(line int, format string, args ...any) error {
	return &encSyntaxError{line: line, reason: fmt.Sprintf(format, args...)}
}

// encIsBlank reports a space or a tab.
func encIsBlank(c byte) bool { return c == ' ' || c == '\t' }

func encSkipBlanks(l []byte, i int) int {
	for i < len(l) && encIsBlank(l[i]) {
		i++
	}
	return i
}

func encIsNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		return true
	case c >= '0' && c <= '9':
		return !first
	}
	return false
}

// encSeriesEnd returns the end of the series text that starts at l[i]:
// after the name, or after the '}' of its labels. It returns -1 when it
// cannot tell, and the caller parses the line in full.
func encSeriesEnd(l []byte, i int) int {
	start := i
	for i < len(l) && encIsNameByte(l[i], i == start) {
		i++
	}
	if i == start {
		return -1
	}
	k := encSkipBlanks(l, i)
	if k == len(l) || l[k] != '{' {
		return i
	}
	for k++; k < len(l); k++ {
		switch l[k] {
		case '}':
			return k + 1
		case '"':
			for k++; k < len(l) && l[k] != '"'; k++ {
				if l[k] == '\\' {
					k++
				}
			}
		}
	}
	return -1
}

// parseSeries reads the series text that starts at l[i] into e.scratch
// and e.labels: the metric name first, then the labels as they came. It
// returns the end of the series text (see encSeriesEnd).
func (e *Encoder) parseSeries(l []byte, i, n int) (int, error) {
	e.scratch = e.scratch[:0]
	e.labels = e.labels[:0]
	start := i
	for i < len(l) && encIsNameByte(l[i], i == start) {
		i++
	}
	if i == start {
		return 0, encFail(n, "want a metric name at column %d", i+1)
	}
	e.scratch = append(e.scratch, l[start:i]...)
	e.labels = append(e.labels, encLabel{n0: encNameLabel, n1: encNameLabel, v0: 0, v1: int32(i - start)})
	if k := encSkipBlanks(l, i); k < len(l) && l[k] == '{' {
		return e.parseLabels(l, k+1, n)
	}
	return i, nil
}

// encParseSample reads the value and the optional timestamp after the
// series text, from l[i].
func encParseSample(l []byte, i, n int) (v float64, ts int64, hasTS bool, err error) {
	i = encSkipBlanks(l, i)
	j := i
	for j < len(l) && !encIsBlank(l[j]) {
		j++
	}
	if j == i {
		return 0, 0, false, encFail(n, "want a value at column %d", i+1)
	}
	v, err = strconv.ParseFloat(encString(l[i:j]), 64)
	if err != nil && !encIsRangeErr(err) {
		return 0, 0, false, encFail(n, "value %q is not a number", l[i:j])
	}
	i = encSkipBlanks(l, j)
	if i == len(l) {
		return v, 0, false, nil
	}
	j = i
	for j < len(l) && !encIsBlank(l[j]) {
		j++
	}
	ts, err = encParseTimestamp(l[i:j])
	if err != nil {
		return 0, 0, false, encFail(n, "%v", err)
	}
	if encSkipBlanks(l, j) != len(l) {
		return 0, 0, false, encFail(n, "unexpected text after the timestamp at column %d", j+1)
	}
	return v, ts, true, nil
}

func encIsRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// encParseTimestamp reads a timestamp as VictoriaMetrics' text import does:
// milliseconds, except that a value in [-2^31, 2^31) is seconds; a
// fraction is truncated.
func encParseTimestamp(b []byte) (int64, error) {
	var ms int64
	if t, err := strconv.ParseInt(encString(b), 10, 64); err == nil {
		ms = t
	} else {
		f, ferr := strconv.ParseFloat(encString(b), 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f >= 1<<63 || f <= -(1<<63) {
			return 0, fmt.Errorf("timestamp %q is not accepted; want integer milliseconds", b)
		}
		if f >= -(1<<31) && f < 1<<31 {
			return int64(f * 1000), nil
		}
		ms = int64(f)
	}
	if ms >= -(1<<31) && ms < 1<<31 {
		return ms * 1000, nil
	}
	return ms, nil
}

// parseLabels reads the labels after '{' up to and including '}', and
// returns the index after it.
func (e *Encoder) parseLabels(l []byte, i, n int) (int, error) {
	for {
		i = encSkipBlanks(l, i)
		if i == len(l) {
			return 0, encFail(n, "labels not closed with '}'")
		}
		if l[i] == '}' {
			return i + 1, nil
		}
		start := i
		for i < len(l) && encIsNameByte(l[i], i == start) && l[i] != ':' {
			i++
		}
		if i == start {
			return 0, encFail(n, "want a label name at column %d", i+1)
		}
		var lb encLabel
		lb.n0 = int32(len(e.scratch))
		e.scratch = append(e.scratch, l[start:i]...)
		lb.n1 = int32(len(e.scratch))
		if string(l[start:i]) == "__name__" {
			return 0, encFail(n, "label __name__ in braces is not accepted")
		}
		i = encSkipBlanks(l, i)
		if i == len(l) || l[i] != '=' {
			return 0, encFail(n, "want '=' after label %s", l[start:i])
		}
		i = encSkipBlanks(l, i+1)
		if i == len(l) || l[i] != '"' {
			return 0, encFail(n, "want a quoted value for label %s", e.scratch[lb.n0:lb.n1])
		}
		lb.v0 = int32(len(e.scratch))
		end, err := e.unquote(l, i+1, n)
		if err != nil {
			return 0, err
		}
		lb.v1 = int32(len(e.scratch))
		e.labels = append(e.labels, lb)
		i = encSkipBlanks(l, end)
		switch {
		case i < len(l) && l[i] == ',':
			i++
		case i < len(l) && l[i] != '}':
			return 0, encFail(n, "want ',' or '}' after the value of label %s at column %d", e.scratch[lb.n0:lb.n1], i+1)
		}
	}
}

// unquote appends the label value starting at l[i] (after the opening
// quote) to e.scratch, unescaped, and returns the index after the closing
// quote.
func (e *Encoder) unquote(l []byte, i, n int) (int, error) {
	for {
		j := bytes.IndexAny(l[i:], "\\\"")
		if j < 0 {
			return 0, encFail(n, "label value not closed with '\"'")
		}
		e.scratch = append(e.scratch, l[i:i+j]...)
		i += j
		if l[i] == '"' {
			return i + 1, nil
		}
		if i+1 == len(l) {
			return 0, encFail(n, "label value not closed with '\"'")
		}
		switch l[i+1] {
		case '\\':
			e.scratch = append(e.scratch, '\\')
		case '"':
			e.scratch = append(e.scratch, '"')
		case 'n':
			e.scratch = append(e.scratch, '\n')
		default:
			// VictoriaMetrics keeps an unknown escape as it stands.
			e.scratch = append(e.scratch, '\\', l[i+1])
		}
		i += 2
	}
}
