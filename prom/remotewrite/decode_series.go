package remotewrite

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// seriesV2 decodes one io.prometheus.write.v2.TimeSeries: its labels
// first, wherever they are in it, then its samples in order.
func (d *Decoder) seriesV2(ts []byte) error {
	d.labels, d.refs, d.name = d.labels[:0], d.refs[:0], nil
	samples, histograms, exemplars := 0, 0, 0
	refsAt := -1
	for b := ts; len(b) > 0; {
		num, typ, val, n, err := d.field(b, "TimeSeries", 0)
		if err != nil {
			return err
		}
		switch num {
		case v2LabelsRefs:
			if refsAt < 0 {
				refsAt = d.off(b)
			}
			if err := d.readRefs(b, typ, val); err != nil {
				return err
			}
		case v2Samples, v2Histograms, v2Exemplars:
			if typ != protowire.BytesType {
				return d.fail(d.off(b), "TimeSeries: field %d has wire type %d; want 2", num, typ)
			}
			switch num {
			case v2Samples:
				samples++
			case v2Histograms:
				histograms++
			default:
				exemplars++
			}
		}
		b = b[n:]
	}
	d.res.Histograms += histograms
	d.res.Exemplars += exemplars
	if len(d.refs)%2 != 0 {
		return d.fail(refsAt, "labels_refs has %d entries; want pairs of name and value", len(d.refs))
	}
	for i := 0; i < len(d.refs); i += 2 {
		d.labels = append(d.labels, label{name: d.symbol(d.refs[i]), value: d.symbol(d.refs[i+1]), off: refsAt})
	}
	if err := d.checkLabels(d.off(ts)); err != nil {
		return err
	}
	if samples == 0 {
		return nil
	}
	d.buildPrefix()
	k := 0
	for b := ts; len(b) > 0; {
		num, _, val, n, _ := d.field(b, "TimeSeries", 0) // read above
		if num == v2Samples {
			if err := d.sample(val, k); err != nil {
				return err
			}
			k++
		}
		b = b[n:]
	}
	return d.flush()
}

// readRefs appends the labels_refs of field f, packed or not, to d.refs,
// each checked against the symbols table.
func (d *Decoder) readRefs(f []byte, typ protowire.Type, packed []byte) error {
	add := func(x uint64, at []byte) error {
		if len(d.refs) == 2*d.maxLabels() {
			return d.fail(d.off(at), "labels_refs: more than %d labels, empty ones included; at most %d beside __name__ are taken", d.maxLabels(), d.lim.MaxLabels)
		}
		if x >= uint64(len(d.symbols)) {
			return d.fail(d.off(at), "labels_refs[%d] is %d, past the %d symbols", len(d.refs), x, len(d.symbols))
		}
		d.refs = append(d.refs, uint32(x))
		return nil
	}
	switch typ {
	case protowire.VarintType:
		_, _, t := protowire.ConsumeTag(f)
		x, _ := protowire.ConsumeVarint(f[t:])
		return add(x, f)
	case protowire.BytesType:
		for b := packed; len(b) > 0; {
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return d.fail(d.off(b), "labels_refs: cannot read a packed varint: %v", protowire.ParseError(n))
			}
			if err := add(x, b); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	return d.fail(d.off(f), "TimeSeries: field 1 (labels_refs) has wire type %d; want 0 or 2 (packed)", typ)
}

// Legacy names, as Prometheus and promtext.Check take them.
var (
	metricStart [256]bool // [a-zA-Z_:]
	metricChar  [256]bool // [a-zA-Z0-9_:]
	labelStart  [256]bool // [a-zA-Z_]
	labelChar   [256]bool // [a-zA-Z0-9_]
)

func init() {
	for c := 0; c < 256; c++ {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		digit := c >= '0' && c <= '9'
		labelStart[c] = letter
		labelChar[c] = letter || digit
		metricStart[c] = letter || c == ':'
		metricChar[c] = letter || digit || c == ':'
	}
}

func validName(s []byte, start, char *[256]bool) bool {
	if len(s) == 0 || !start[s[0]] {
		return false
	}
	for _, c := range s[1:] {
		if !char[c] {
			return false
		}
	}
	return true
}

var nameLabel = []byte("__name__")

// checkLabels checks the labels of the current series, which starts at
// offset off, as promtext.Check checks a line, and sets d.name.
func (d *Decoder) checkLabels(off int) error {
	var name []byte
	for _, l := range d.labels {
		if bytes.Equal(l.name, nameLabel) {
			if name != nil {
				return d.fail(l.off, "label __name__ given twice")
			}
			name = l.value
		}
	}
	lim := d.lim
	switch {
	case len(name) == 0:
		return d.fail(off, "no __name__ label; want one with the metric name")
	case len(name) > lim.MaxLabelValueBytes:
		return d.fail(off, "metric name of %d bytes is over the limit of %d", len(name), lim.MaxLabelValueBytes)
	case !validName(name, &metricStart, &metricChar):
		return d.fail(off, "metric name %s is not accepted; want [a-zA-Z_:][a-zA-Z0-9_:]*", quote(name))
	}
	d.name = name
	count := 0
	for i, l := range d.labels {
		if bytes.Equal(l.name, nameLabel) {
			continue
		}
		switch {
		case len(l.name) > lim.MaxLabelNameBytes:
			return d.fail(l.off, "label %d: name of %d bytes is over the limit of %d", i, len(l.name), lim.MaxLabelNameBytes)
		case !validName(l.name, &labelStart, &labelChar):
			return d.fail(l.off, "label %d: name %s is not accepted; want [a-zA-Z_][a-zA-Z0-9_]*", i, quote(l.name))
		case len(l.value) > lim.MaxLabelValueBytes:
			return d.fail(l.off, "label %s: value of %d bytes is over the limit of %d", l.name, len(l.value), lim.MaxLabelValueBytes)
		case !utf8.Valid(l.value):
			return d.fail(l.off, "label %s: value %s is not valid UTF-8", l.name, quote(l.value))
		case bytes.IndexByte(l.value, 0) >= 0:
			return d.fail(l.off, "label %s: value %s holds a NUL byte", l.name, quote(l.value))
		}
		for _, o := range d.labels[:i] {
			if bytes.Equal(o.name, l.name) {
				return d.fail(l.off, "label %s given twice", l.name)
			}
		}
		if len(l.value) > 0 {
			count++
		}
	}
	if count > lim.MaxLabels {
		return d.fail(off, "%d labels beside __name__ are over the limit of %d", count, lim.MaxLabels)
	}
	return nil
}

// quote quotes b for an error message, at most 64 bytes of it.
func quote(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "..."
	}
	return strconv.Quote(string(b))
}

// buildPrefix writes name{labels} and a space for the current series.
func (d *Decoder) buildPrefix() {
	p := append(d.prefix[:0], d.name...)
	open := false
	for _, l := range d.labels {
		if len(l.value) == 0 || bytes.Equal(l.name, nameLabel) {
			continue
		}
		if open {
			p = append(p, ',')
		} else {
			p = append(p, '{')
			open = true
		}
		p = append(p, l.name...)
		p = append(p, '=', '"')
		p = appendEscaped(p, l.value)
		p = append(p, '"')
	}
	if open {
		p = append(p, '}')
	}
	d.prefix = append(p, ' ')
}

// appendEscaped appends v with the escapes of the text format: \\, \" and
// \n.
func appendEscaped(dst, v []byte) []byte {
	for i, c := range v {
		if c == '\\' || c == '"' || c == '\n' {
			return appendEscapedFrom(append(dst, v[:i]...), v[i:])
		}
	}
	return append(dst, v...)
}

func appendEscapedFrom(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\', '"':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// The timestamps VictoriaMetrics' import takes for seconds, not
// milliseconds.
const (
	minMillis = 1 << 31
	maxSecs   = -(1 << 31)
)

// writeSample writes the line of the k-th sample of the current series,
// which starts at offset off.
func (d *Decoder) writeSample(off, k int, v float64, ts int64) error {
	if ts >= maxSecs && ts < minMillis {
		return d.fail(off, "sample %d: timestamp %d ms is before 1970-01-25 (2^31 ms), which VictoriaMetrics' import reads as seconds", k, ts)
	}
	start := len(d.out)
	d.out = append(d.out, d.prefix...)
	d.out = appendValue(d.out, v)
	d.out = append(d.out, ' ')
	d.out = strconv.AppendInt(d.out, ts, 10)
	if n := len(d.out) - start; n > d.lim.MaxLineBytes {
		d.out = d.out[:start]
		return d.fail(off, "sample %d: its line of %d bytes is over the limit of %d", k, n, d.lim.MaxLineBytes)
	}
	d.out = append(d.out, '\n')
	d.res.Samples++
	return nil
}

// appendValue formats v so that VictoriaMetrics' import reads the same
// float64: integers as such, others in Go's shortest form.
func appendValue(dst []byte, v float64) []byte {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15 && (v != 0 || !math.Signbit(v)):
		return strconv.AppendInt(dst, int64(v), 10)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
