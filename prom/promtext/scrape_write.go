package promtext

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// Reasons of a scrape's failure on a series (rather than on the text).
const (
	reasonMissingName  = "missing metric name (__name__ label) after metric relabeling"
	reasonInvalidName  = "invalid metric name %q; want [a-zA-Z_:][a-zA-Z0-9_:]*"
	reasonInvalidLabel = "invalid label name %q after metric relabeling; want [a-zA-Z_][a-zA-Z0-9_]*"
	reasonInvalidValue = "invalid UTF-8 in a label value after metric relabeling"
)

// emit handles the sample just read into s.smp: it relabels it, checks
// it, counts it and writes it, or records why the scrape fails.
func (s *scrapeState) emit(l []byte, dst []byte) ([]byte, error) {
	s.st.Scraped++
	smp := &s.smp
	p := s.p
	s.h = maphash.Bytes(p.seed, l[smp.series.lo:smp.series.hi])
	if smp.blanks {
		return dst, s.lineError(s.lineNo, l, 0, reasonLeadingBlank)
	}
	if p.opt.Rules != nil || smp.nameQuoted {
		return s.emitBuilt(l, dst)
	}
	var shadowed, seen uint64
	n := 0 // labels written, target labels included
	// canon: the labels are written name="value",... with nothing to
	// change, so that the line up to its '}' is copied at once.
	canon := smp.brace == smp.name.hi
	for i := range smp.labels {
		lb := &smp.labels[i]
		if lb.quoted {
			return s.emitBuilt(l, dst)
		}
		name := l[lb.name.lo:lb.name.hi]
		bit := nameBit(name)
		if seen&bit != 0 && duplicateName(l, smp.labels[:i], name) || string(name) == "__name__" {
			// A name given twice: the series is refused unless merging
			// the target's labels or relabeling replaces it.
			return s.emitBuilt(l, dst)
		}
		seen |= bit
		empty := lb.value.lo == lb.value.hi
		if !empty {
			n++
		}
		if p.tgtBits&bit != 0 {
			if t := p.targetIndex(name); t >= 0 {
				switch {
				case p.opt.HonorLabels:
					shadowed |= 1 << uint(t)
				case !empty:
					return s.emitBuilt(l, dst) // exported_<name>
				}
			}
		}
		canon = canon && !empty && lb.escapes <= escPlain && lb.value.lo == lb.name.hi+2 && !s.normalizes(name) &&
			(i == 0 && lb.name.lo == smp.brace+1 || i > 0 && lb.name.lo == smp.labels[i-1].value.hi+2 && l[lb.name.lo-1] == ',')
	}
	canon = canon && len(smp.labels) > 0 && smp.labels[len(smp.labels)-1].value.hi+1 == smp.close
	n += len(p.tgt) - bits.OnesCount64(shadowed)
	if err := s.checkCount(l, n); err != nil {
		return dst, err
	}
	if smp.name.hi-smp.name.lo > p.lim.MaxLabelValueBytes {
		return dst, s.lineError(s.lineNo, l, smp.name.lo, reasonNameTooLong)
	}
	if err := s.checkLengths(l); err != nil {
		return dst, err
	}
	ts, ok, err := s.account(l, "")
	if !ok {
		return dst, err
	}
	start := len(dst)
	sep := byte('{')
	if canon {
		dst = append(dst, l[smp.name.lo:smp.close]...)
		sep = ','
	} else {
		dst = append(dst, l[smp.name.lo:smp.name.hi]...)
		for i := range smp.labels {
			lb := &smp.labels[i]
			if lb.value.lo == lb.value.hi {
				continue
			}
			dst = append(dst, sep)
			sep = ','
			dst = append(dst, l[lb.name.lo:lb.name.hi]...)
			dst = append(dst, '=', '"')
			dst = s.appendRawValue(dst, l[lb.name.lo:lb.name.hi], l[lb.value.lo:lb.value.hi], lb.escapes)
			dst = append(dst, '"')
		}
	}
	for i, t := range p.tgt {
		if shadowed&(1<<uint(i)) == 0 {
			dst = append(dst, sep)
			sep = ','
			dst = append(dst, t.text...)
		}
	}
	if sep == ',' {
		dst = append(dst, '}')
	}
	return s.endLine(l, dst, start, ts)
}

// nameBit is a bit of a small hash of a label name, for the quick tests of
// a name against a few others.
func nameBit(name []byte) uint64 {
	return 1 << ((uint(name[0]) + 5*uint(name[len(name)-1]) + 3*uint(len(name))) & 63)
}

// normalizes reports whether the label name's values are rewritten (le
// of a histogram, quantile of a summary).
func (s *scrapeState) normalizes(name []byte) bool {
	return s.mtype == typeHistogram && string(name) == "le" || s.mtype == typeSummary && string(name) == "quantile"
}

// checkLengths checks the names and values of the line's labels against
// VictoriaMetrics' limits.
func (s *scrapeState) checkLengths(l []byte) error {
	for i := range s.smp.labels {
		lb := &s.smp.labels[i]
		if lb.name.hi-lb.name.lo > s.p.lim.MaxLabelNameBytes {
			return s.lineError(s.lineNo, l, lb.name.lo, reasonLabelNameTooLong)
		}
		if unescapedLen(l[lb.value.lo:lb.value.hi], lb.escapes) > s.p.lim.MaxLabelValueBytes {
			return s.lineError(s.lineNo, l, lb.value.lo, reasonLabelValueTooLong)
		}
	}
	return nil
}

// duplicateName reports whether one of ls has the name name.
func duplicateName(l []byte, ls []rawLabel, name []byte) bool {
	for _, o := range ls {
		if !o.quoted && string(l[o.name.lo:o.name.hi]) == string(name) {
			return true
		}
	}
	return false
}

// targetIndex returns the index of the target label called name, or -1.
func (p *ScrapeParser) targetIndex(name []byte) int {
	for i := range p.tgt {
		if p.tgt[i].name == string(name) {
			return i
		}
	}
	return -1
}

// checkCount checks n labels (the metric name not counted) against
// label_limit and VictoriaMetrics' limit.
func (s *scrapeState) checkCount(l []byte, n int) error {
	if lim := s.p.opt.LabelLimit; lim > 0 && n+1 > lim {
		return fmt.Errorf("label_limit exceeded (metric: %.50s, number of labels: %d, limit: %d) at line %d",
			l[s.smp.name.lo:s.smp.name.hi], n+1, lim, s.lineNo)
	}
	if n > s.p.lim.MaxLabels {
		return s.lineError(s.lineNo, l, 0, reasonTooManyLabels)
	}
	return nil
}

// account counts the sample, which metric relabeling kept, and returns
// its timestamp, or false when it is not written: a duplicate, a
// timestamp out of bounds, or a sample over the sample limit. It keeps
// the series sets as Prometheus' scrape cache: a series of the last
// scrapes is marked seen when it is met, a new one only once appended.
// refused, when not "", is why Prometheus' head would refuse the sample
// (a label name given twice): the scrape then fails, unless the sample
// never reaches the head (a duplicate, over the limit, out of bounds).
func (s *scrapeState) account(l []byte, refused string) (int64, bool, error) {
	smp := &s.smp
	ts, own := s.stamp, false
	if smp.hasTS && s.p.opt.HonorTimestamps {
		ts, own = smp.ts, true
	}
	h := s.h
	seen := s.cur.has(h)
	cached := seen || s.p.prev.has(h)
	if !seen && cached {
		s.cur.insert(h)
	}
	if seen && !own {
		s.st.PostRelabel++
		s.st.Duplicates++
		if s.st.FirstDuplicateLine == 0 {
			s.st.FirstDuplicateLine = s.lineNo
		}
		return 0, false, nil
	}
	if lim := s.p.opt.SampleLimit; lim > 0 && s.st.PostRelabel+1-s.st.Duplicates > lim {
		s.over = true
	}
	if s.over {
		s.st.PostRelabel++
		return 0, false, nil
	}
	if own && (ts > s.maxTS || ts < minTimestamp) {
		s.st.PostRelabel++
		s.st.OutOfBounds++
		return 0, false, nil
	}
	if refused != "" {
		return 0, false, s.lineError(s.lineNo, l, 0, refused)
	}
	s.st.PostRelabel++
	if !cached {
		s.cur.insert(h)
		s.st.SeriesAdded++
	}
	return ts, true, nil
}

// endLine writes the value and timestamp of the line begun at start.
func (s *scrapeState) endLine(l, dst []byte, start int, ts int64) ([]byte, error) {
	dst = append(dst, ' ')
	dst = appendValue(dst, l[s.smp.value.lo:s.smp.value.hi])
	dst = append(dst, ' ')
	if ts == s.stamp {
		dst = append(dst, s.stampText...)
	} else {
		dst = appendInt(dst, ts)
	}
	if len(dst)-start > s.p.lim.MaxLineBytes {
		return dst[:start], s.lineError(s.lineNo, l, 0, "line too long with the target's labels")
	}
	s.st.Written++
	return append(dst, '\n'), nil
}

// appendRawValue appends the label value raw as written in the body,
// escaped for VictoriaMetrics: Prometheus' normalization of le and
// quantile applied, a backslash that escapes nothing VictoriaMetrics
// reads doubled.
func (s *scrapeState) appendRawValue(dst, name, raw []byte, esc uint8) []byte {
	if s.normalizes(name) {
		var vb [64]byte
		v := appendUnescaped(vb[:0], raw)
		if f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64); err == nil {
			return appendOpenMetricsFloat(dst, f)
		}
	}
	if esc <= escPlain {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case '\\', '"', 'n':
			dst = append(dst, '\\', raw[i])
		default:
			dst = append(dst, '\\', '\\', raw[i])
		}
	}
	return dst
}

// unescapedLen returns the length of raw once unescaped.
func unescapedLen(raw []byte, esc uint8) int {
	if esc == escNone {
		return len(raw)
	}
	n := len(raw)
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			if c := raw[i+1]; c == '\\' || c == '"' || c == 'n' {
				n--
			}
			i++
		}
	}
	return n
}

// appendUnescaped appends raw with Prometheus' escapes (\\, \" and \n)
// replaced; other backslashes stay.
func appendUnescaped(dst, raw []byte) []byte {
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 || i+1 == len(raw) {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		switch c := raw[i+1]; c {
		case '\\', '"':
			dst = append(dst, c)
		case 'n':
			dst = append(dst, '\n')
		default:
			dst = append(dst, '\\', c)
		}
		raw = raw[i+2:]
	}
}

// emitBuilt is the path of a sample that needs its label set built: metric
// relabeling, a scraped label that a target label replaces, or quoted
// names.
func (s *scrapeState) emitBuilt(l []byte, dst []byte) ([]byte, error) {
	smp := &s.smp
	p := s.p
	raw := l[smp.series.lo:smp.series.hi]
	if e, ok := p.built[s.h]; ok && e.raw == string(raw) && e.mtype == s.mtype {
		// Seen in an earlier scrape: relabeled and checked then.
		e.iter = p.iter
		p.built[s.h] = e
		if e.dropped {
			return dst, nil
		}
		ts, ok, err := s.account(l, "")
		if !ok {
			return dst, err
		}
		start := len(dst)
		dst = append(dst, e.prefix...)
		return s.endLine(l, dst, start, ts)
	}
	dst, err := s.build(l, dst)
	return dst, err
}

// build relabels and checks the sample's label set, writes it and keeps
// the outcome for the next scrapes.
func (s *scrapeState) build(l []byte, dst []byte) ([]byte, error) {
	smp := &s.smp
	p := s.p
	raw := l[smp.series.lo:smp.series.hi]
	s.scratch = s.scratch[:0]
	ls := append(s.ls[:0], labels.Label{Name: "__name__", Value: s.str(l[smp.name.lo:smp.name.hi], smp.nameEscapes)})
	for i := range smp.labels {
		lb := &smp.labels[i]
		name := s.str(l[lb.name.lo:lb.name.hi], escNone)
		if lb.quoted {
			name = s.str(l[lb.name.lo:lb.name.hi], lb.escapes)
		}
		value := s.str(l[lb.value.lo:lb.value.hi], lb.escapes)
		if s.mtype == typeHistogram && name == "le" || s.mtype == typeSummary && name == "quantile" {
			if f, err := strconv.ParseFloat(value, 64); err == nil {
				start := len(s.scratch)
				s.scratch = appendOpenMetricsFloat(s.scratch, f)
				value = s.str(s.scratch[start:], escNone)
			}
		}
		ls = append(ls, labels.Label{Name: name, Value: value})
	}
	s.ls = ls
	sortLabels(ls)
	s.dups = s.dups[:0]
	for i := 1; i < len(ls); i++ {
		if ls[i].Name == ls[i-1].Name {
			s.dups = append(s.dups, ls[i].Name)
		}
	}
	s.b.Reset(ls)
	relabel.MergeTarget(s.b, p.opt.Target, p.opt.HonorLabels)
	if p.opt.Rules != nil && !p.opt.Rules.Process(s.b) {
		p.keepBuilt(s.h, raw, s.mtype, "", true)
		return dst, nil
	}
	out := s.b.Labels(s.out)
	s.out = out
	if len(out) == 0 {
		p.keepBuilt(s.h, raw, s.mtype, "", true)
		return dst, nil
	}
	if err := s.checkBuilt(l, out); err != nil {
		return dst, err
	}
	for _, lb := range ls {
		// A second metric name left in the set is checked too.
		if lb.Name == "__name__" && !validMetricName(lb.Value) && slices.Contains(s.dups, "__name__") && !s.b.Deleted("__name__") {
			return dst, s.lineError(s.lineNo, l, 0, fmt.Sprintf(reasonInvalidName, lb.Value))
		}
	}
	refused := ""
	for _, n := range s.dups {
		// A name given twice stays twice in Prometheus unless a rule
		// deleted it (setting it replaces one of them): its head refuses
		// the sample, and the scrape fails.
		if !s.b.Deleted(n) {
			refused = reasonDuplicateLabel + " " + n
		}
	}
	ts, ok, err := s.account(l, refused)
	if !ok {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, out.Get("__name__")...)
	sep := byte('{')
	for _, lb := range out {
		if lb.Name == "__name__" {
			continue
		}
		dst = append(dst, sep)
		sep = ','
		dst = appendLabel(dst, lb.Name, lb.Value)
	}
	if sep == ',' {
		dst = append(dst, '}')
	}
	if refused == "" {
		p.keepBuilt(s.h, raw, s.mtype, string(dst[start:]), false)
	}
	return s.endLine(l, dst, start, ts)
}

// builtSeries is what a series' label set became, for the next scrapes:
// Prometheus' scrape cache keeps the same, so that a series is relabeled
// once, not at every scrape.
type builtSeries struct {
	raw     string // the series as written in the body
	prefix  string // as written out, up to the value
	mtype   uint8  // the TYPE in force, which normalizes le and quantile
	dropped bool   // dropped by metric relabeling
	iter    uint64 // the last Parse that met it
}

// keepBuilt records the outcome of building the series raw.
func (p *ScrapeParser) keepBuilt(h uint64, raw []byte, mtype uint8, prefix string, dropped bool) {
	if p.built == nil {
		p.built = map[uint64]builtSeries{}
	}
	p.built[h] = builtSeries{raw: string(raw), prefix: prefix, mtype: mtype, dropped: dropped, iter: p.iter}
}

// sweepBuilt forgets the series the last Parse did not meet, after a
// successful one, or all of them when failed scrapes made them many.
func (p *ScrapeParser) sweepBuilt(ok bool) {
	switch {
	case ok:
		for h, e := range p.built {
			if e.iter != p.iter {
				delete(p.built, h)
			}
		}
	case len(p.built) > 2*p.okSeries+1000:
		clear(p.built)
	}
}

// checkBuilt checks a built label set as Prometheus' scrape loop does, and
// against VictoriaMetrics' limits.
func (s *scrapeState) checkBuilt(l []byte, out labels.Labels) error {
	name := out.Get("__name__")
	switch {
	case name == "":
		return s.lineError(s.lineNo, l, 0, reasonMissingName)
	case !validMetricName(name):
		return s.lineError(s.lineNo, l, 0, fmt.Sprintf(reasonInvalidName, name))
	case len(name) > s.p.lim.MaxLabelValueBytes:
		return s.lineError(s.lineNo, l, 0, reasonNameTooLong)
	}
	for _, lb := range out {
		switch {
		case lb.Name == "__name__":
		case !labels.IsValidName(lb.Name):
			return s.lineError(s.lineNo, l, 0, fmt.Sprintf(reasonInvalidLabel, lb.Name))
		case len(lb.Name) > s.p.lim.MaxLabelNameBytes:
			return s.lineError(s.lineNo, l, 0, reasonLabelNameTooLong)
		case len(lb.Value) > s.p.lim.MaxLabelValueBytes:
			return s.lineError(s.lineNo, l, 0, reasonLabelValueTooLong)
		case !validUTF8(lb.Value):
			return s.lineError(s.lineNo, l, 0, reasonInvalidValue)
		}
	}
	return s.checkCount(l, len(out)-1)
}

// str returns raw, unescaped, as a string that lives until the next line:
// it points into the line or into s.scratch.
func (s *scrapeState) str(raw []byte, esc uint8) string {
	if esc == escNone {
		return unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	start := len(s.scratch)
	s.scratch = appendUnescaped(s.scratch, raw)
	v := s.scratch[start:]
	return unsafe.String(unsafe.SliceData(v), len(v))
}

func sortLabels(ls labels.Labels) {
	slices.SortStableFunc(ls, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
}

func validUTF8(s string) bool { return utf8.ValidString(s) }

// validMetricName reports a legacy metric name, [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(n string) bool {
	if n == "" || !nameStart[n[0]] {
		return false
	}
	for i := 1; i < len(n); i++ {
		if !nameChar[n[i]] {
			return false
		}
	}
	return true
}

// appendLabel appends name="value", the value escaped.
func appendLabel(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\', '"':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendValue appends a sample value that validValue took, in a form
// VictoriaMetrics reads to the same float64: as written when it is a
// plain decimal number or NaN/Inf, else formatted again ("+1" is "1").
func appendValue(dst, v []byte) []byte {
	if n, ok := scanNumber(v, 0); ok && n.end == len(v) || isSpecial(v) {
		return append(dst, v...)
	}
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
	return appendFloat(dst, f)
}

// appendFloat formats f for VictoriaMetrics' import.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendOpenMetricsFloat is Prometheus' labels.AppendOpenMetricsFloat, the
// form le and quantile values are normalized to.
func appendOpenMetricsFloat(dst []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(dst, "1.0"...)
	case f == 0:
		return append(dst, "0.0"...)
	case f == -1:
		return append(dst, "-1.0"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	if !bytes.ContainsAny(dst[start:], "e.") {
		dst = append(dst, '.', '0')
	}
	return dst
}

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
