package promtext

import (
	"bytes"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The reference implementation: the grammar of the package documentation
// as regular expressions, the limits as plain checks. It is slow and
// simple, shares no code with Check, and also returns what each sample
// says, for the round trip and the VictoriaMetrics cross-check.
const (
	refName       = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	refLabelName  = `[a-zA-Z_][a-zA-Z0-9_]*`
	refLabelValue = `"(?:[^"\\\x00]|\\[\\"n])*"`
	refLabel      = `[ \t]*` + refLabelName + `[ \t]*=[ \t]*` + refLabelValue + `[ \t]*`
	refLabels     = `\{(?:` + refLabel + `(?:,` + refLabel + `)*,?)?[ \t]*\}`
	refNumber     = `-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`
	refValue      = `[+-]?(?i:inf|infinity)|(?i:nan)|` + refNumber
)

var (
	refSampleRE = regexp.MustCompile(`^[ \t]*(` + refName + `)(?:[ \t]*(` + refLabels + `)[ \t]*|[ \t]+)(` +
		refValue + `)(?:[ \t]+(` + refNumber + `))?[ \t]*$`)
	refLabelPair = regexp.MustCompile(`(` + refLabelName + `)[ \t]*=[ \t]*(` + refLabelValue + `)`)
	refSkipped   = regexp.MustCompile(`^[ \t]*(?:#.*)?$`)
)

// refResult is what the reference says of a body.
type refResult struct {
	samples  []refSample
	line     int // the first line at fault, or 0
	tooLarge bool
}

// refSample is one sample as VictoriaMetrics reads it.
type refSample struct {
	name   string
	labels map[string]string // unescaped
	value  float64
	hasTS  bool
	ts     int64  // milliseconds, after VictoriaMetrics' seconds rule
	rawTS  string // the timestamp as written
}

// refCheck judges body as Check must.
func refCheck(body []byte, lim Limits) refResult {
	var res refResult
	cut := int64(len(body)) > lim.MaxBytes
	if cut {
		body = body[:lim.MaxBytes]
	}
	lines := bytes.Split(body, []byte("\n"))
	last := lines[len(lines)-1]
	lines = lines[:len(lines)-1] // complete lines
	for i, l := range lines {
		s, ok, isSample := refLine(l, lim)
		if !ok {
			res.line = i + 1
			return res
		}
		if isSample {
			res.samples = append(res.samples, s)
		}
	}
	n := len(lines) + 1
	switch {
	case len(last) > lim.MaxLineBytes:
		res.line = n
	case cut:
		res.tooLarge = true
	case len(last) > 0:
		s, ok, isSample := refLine(last, lim)
		if !ok {
			res.line = n
		} else if isSample {
			res.samples = append(res.samples, s)
		}
	}
	return res
}

// refLine judges one line without its "\n".
func refLine(l []byte, lim Limits) (s refSample, ok, isSample bool) {
	if len(l) > lim.MaxLineBytes || bytes.IndexByte(l, 0) >= 0 {
		return s, false, false
	}
	l = bytes.TrimSuffix(l, []byte("\r"))
	if refSkipped.Match(l) {
		return s, true, false
	}
	m := refSampleRE.FindSubmatch(l)
	if m == nil || !utf8.Valid(l) {
		return s, false, false
	}
	s = refSample{name: string(m[1]), labels: map[string]string{}}
	if len(s.name) > lim.MaxLabelValueBytes {
		return s, false, false
	}
	pairs := refLabelPair.FindAllSubmatch(m[2], -1)
	if len(pairs) > lim.MaxLabels {
		return s, false, false
	}
	for _, p := range pairs {
		name, value := string(p[1]), refUnescape(string(p[2][1:len(p[2])-1]))
		if _, dup := s.labels[name]; dup || name == "__name__" ||
			len(name) > lim.MaxLabelNameBytes || len(value) > lim.MaxLabelValueBytes {
			return s, false, false
		}
		s.labels[name] = value
	}
	v, err := strconv.ParseFloat(string(m[3]), 64)
	if err != nil {
		return s, false, false
	}
	s.value = v
	if len(m[4]) > 0 {
		ts, err := strconv.ParseFloat(string(m[4]), 64)
		if err != nil || math.Abs(ts) >= 1<<63 {
			return s, false, false
		}
		if ts >= -1<<31 && ts < 1<<31 {
			ts *= 1000
		}
		s.hasTS, s.ts, s.rawTS = true, int64(ts), string(m[4])
	}
	return s, true, true
}

func refUnescape(v string) string {
	return strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(v)
}

// render writes s back in canonical form: labels sorted, values escaped,
// single spaces. A timestamp that VictoriaMetrics reads as milliseconds
// is written as such; one it reads as seconds stays as written.
func (s refSample) render() string {
	var b strings.Builder
	b.WriteString(s.name)
	names := make([]string, 0, len(s.labels))
	for k := range s.labels {
		names = append(names, k)
	}
	if len(names) > 0 {
		slices.Sort(names)
		b.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s.labels[k])
			b.WriteString(k + `="` + v + `"`)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	switch {
	case math.IsNaN(s.value):
		b.WriteString("NaN")
	case math.IsInf(s.value, 1):
		b.WriteString("+Inf")
	case math.IsInf(s.value, -1):
		b.WriteString("-Inf")
	default:
		b.WriteString(strconv.FormatFloat(s.value, 'g', -1, 64))
	}
	if s.hasTS {
		b.WriteByte(' ')
		if s.ts >= 1<<31 || s.ts < -1<<31 {
			b.WriteString(strconv.FormatInt(s.ts, 10))
		} else {
			b.WriteString(s.rawTS)
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func (s refSample) equal(o refSample) bool {
	if s.name != o.name || len(s.labels) != len(o.labels) || s.hasTS != o.hasTS || s.ts != o.ts {
		return false
	}
	for k, v := range s.labels {
		if w, ok := o.labels[k]; !ok || w != v {
			return false
		}
	}
	return s.value == o.value || math.IsNaN(s.value) && math.IsNaN(o.value)
}
