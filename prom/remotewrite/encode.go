// Package remotewrite speaks Prometheus' remote-write protocol, 1.0
// (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request), both
// snappy block compressed.
//
// The encoder (encode*.go) turns the lines of the Prometheus text
// exposition format that procfleet's pipeline produces (agent batches,
// relay bodies) into one request, written field by field with protowire:
// there is no struct per sample or per series to build and throw away. An
// Encoder keeps, between calls, the series and symbols it has seen, so
// that a steady stream of batches over the same series allocates nothing.
package remotewrite

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"
)

// EncodeOptions shape one request.
type EncodeOptions struct {
	// Version is the protocol: 1 (remote write 1.0, the default when 0)
	// or 2 (remote write 2.0).
	Version int
	// ExtraLabels are "name=value" pairs, as VictoriaMetrics' extra_label
	// query argument takes them, added to every series; each replaces a
	// label of the same name in the line. A later pair of the same name
	// replaces an earlier one.
	ExtraLabels []string
	// DefaultTimestamp, in milliseconds since the epoch, stamps the lines
	// without a timestamp and those whose timestamp is 0 (VictoriaMetrics'
	// timestamp query argument). 0 uses the time of the call, as
	// VictoriaMetrics uses the time of the import.
	DefaultTimestamp int64
}

// EncodeStats describe the request made.
type EncodeStats struct {
	// Series is the number of time series in the request, Samples the
	// number of samples (the sample lines read).
	Series, Samples int
	// Raw is the size of the protobuf message before compression.
	Raw int
}

// Header values of a remote-write request.
const (
	encContentEncoding = "snappy"
	encContentTypeV1   = "application/x-protobuf"
	encContentTypeV2   = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	encVersionV1       = "0.1.0"
	encVersionV2       = "2.0.0"
	// EncodeWrittenSamplesHeader is the header in which a 2.0 receiver
	// says how many samples it wrote; a 2.xx answer without it comes from
	// a receiver that did not understand 2.0.
	EncodeWrittenSamplesHeader = "X-Prometheus-Remote-Write-Samples-Written"
)

// SetEncodeHeaders sets the headers of a remote-write request of the
// given version (1 or 2): Content-Encoding, Content-Type and
// X-Prometheus-Remote-Write-Version.
func SetEncodeHeaders(h http.Header, version int) {
	h.Set("Content-Encoding", encContentEncoding)
	if version == 2 {
		h.Set("Content-Type", encContentTypeV2)
		h.Set("X-Prometheus-Remote-Write-Version", encVersionV2)
		return
	}
	h.Set("Content-Type", encContentTypeV1)
	h.Set("X-Prometheus-Remote-Write-Version", encVersionV1)
}

// encMaxInterned bounds the series and symbols an Encoder remembers
// between calls; past it, it forgets them all.
const encMaxInterned = 1 << 18

// Encoder turns text lines into remote-write requests. Its zero value is
// ready to use. An Encoder is not safe for concurrent use.
type Encoder struct {
	scratch []byte     // the line's name and unescaped label values
	labels  []encLabel // the line's labels, the name first
	sorted  []encLabel // with extra labels, sorted by name
	extra   []byte     // extra label names and values
	extras  []encLabel // offsets into extra
	key     []byte     // the series: its 1.0 Label messages

	series    map[string]int32 // key -> slot
	raws      map[string]int32 // series text as written -> slot, for rawExtra
	rawExtra  []byte           // the extra labels raws holds for
	keys      []string         // slot -> key
	slotEpoch []uint32
	slotPos   []int32 // slot -> index in req, valid for slotEpoch == epoch
	epoch     uint32

	req       []int32 // slots of this request, in order of first sample
	reqCount  []int32
	smpSeries []int32
	smpTS     []int64
	smpVal    []float64
	order     []int32 // sample indexes grouped by series

	symbols  map[string]int32 // symbol -> slot
	symKeys  []string
	symEpoch []uint32
	symRef   []uint32
	symList  []int32 // slots of this request's symbols, in ref order from 1
	refs     []uint32

	raw, tmp []byte
}

// encNameLabel marks the metric name in encLabel.n0.
const encNameLabel = -1

// Encode reads text, complete lines of the Prometheus text exposition
// format, and appends to dst the snappy-compressed remote-write request
// holding its samples. An error names the first line it cannot read;
// nothing is appended then.
func (e *Encoder) Encode(dst, text []byte, o EncodeOptions) ([]byte, EncodeStats, error) {
	raw, st, err := e.Marshal(e.raw[:0], text, o)
	e.raw = raw
	if err != nil {
		return dst, st, err
	}
	n := s2.MaxEncodedLen(len(raw))
	if n < 0 {
		return dst, st, fmt.Errorf("cannot compress a request of %d bytes", len(raw))
	}
	dst = slices.Grow(dst, n)
	out := s2.EncodeSnappy(dst[len(dst):len(dst)+n], raw)
	return dst[:len(dst)+len(out)], st, nil
}

// Marshal is Encode without the compression: it appends the protobuf
// message to dst.
func (e *Encoder) Marshal(dst, text []byte, o EncodeOptions) ([]byte, EncodeStats, error) {
	if o.Version != 0 && o.Version != 1 && o.Version != 2 {
		return dst, EncodeStats{}, fmt.Errorf("remote write version %d is not accepted; want 1 or 2", o.Version)
	}
	if err := e.setExtra(o.ExtraLabels); err != nil {
		return dst, EncodeStats{}, err
	}
	def := o.DefaultTimestamp
	if def == 0 {
		def = time.Now().UnixMilli()
	}
	if err := e.read(text, def); err != nil {
		return dst, EncodeStats{}, err
	}
	e.group()
	st := EncodeStats{Series: len(e.req), Samples: len(e.smpTS)}
	start := len(dst)
	if o.Version == 2 {
		dst = e.appendV2(dst)
	} else {
		dst = e.appendV1(dst)
	}
	st.Raw = len(dst) - start
	return dst, st, nil
}

// setExtra parses the extra labels into e.extras.
func (e *Encoder) setExtra(pairs []string) error {
	e.extra, e.extras = e.extra[:0], e.extras[:0]
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !encValidLabelName(name) || name == "__name__" {
			return fmt.Errorf("extra label %q is not accepted; want name=value with a label name other than __name__", p)
		}
		lb := encLabel{n0: int32(len(e.extra))}
		e.extra = append(e.extra, name...)
		lb.n1 = int32(len(e.extra))
		lb.v0 = lb.n1
		e.extra = append(e.extra, value...)
		lb.v1 = int32(len(e.extra))
		if i := slices.IndexFunc(e.extras, func(x encLabel) bool { return string(e.extra[x.n0:x.n1]) == name }); i >= 0 {
			e.extras[i] = lb
			continue
		}
		e.extras = append(e.extras, lb)
	}
	if !bytes.Equal(e.rawExtra, e.extraKey()) {
		clear(e.raws)
		e.rawExtra = append(e.rawExtra[:0], e.extraKey()...)
	}
	return nil
}

// extraKey returns the extra labels in effect, for comparison: names and
// values as they stand in e.extra, each pair once.
func (e *Encoder) extraKey() []byte {
	k := e.key[:0]
	for _, x := range e.extras {
		k = append(k, e.extra[x.n0:x.n1]...)
		k = append(k, 0)
		k = append(k, e.extra[x.v0:x.v1]...)
		k = append(k, 0)
	}
	e.key = k
	return k
}

func encValidLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !encIsNameByte(s[i], i == 0) || s[i] == ':' {
			return false
		}
	}
	return true
}

// read parses every line of text into the samples of this request.
func (e *Encoder) read(text []byte, def int64) error {
	if e.series == nil || len(e.keys) > encMaxInterned || len(e.raws) > 2*encMaxInterned {
		e.series = make(map[string]int32)
		e.raws = make(map[string]int32)
		e.keys, e.slotEpoch, e.slotPos = e.keys[:0], e.slotEpoch[:0], e.slotPos[:0]
	}
	e.epoch++
	if e.epoch == 0 {
		clear(e.slotEpoch)
		clear(e.symEpoch)
		e.epoch = 1
	}
	e.req, e.reqCount = e.req[:0], e.reqCount[:0]
	e.smpSeries, e.smpTS, e.smpVal = e.smpSeries[:0], e.smpTS[:0], e.smpVal[:0]
	for n := 1; len(text) > 0; n++ {
		var l []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, nil
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		i := encSkipBlanks(l, 0)
		if i == len(l) || l[i] == '#' {
			continue
		}
		// A series text seen before, with the same extra labels, is the
		// same series: its labels need not be read, sorted and encoded.
		slot, known := int32(0), false
		end := encSeriesEnd(l, i)
		if end > 0 {
			slot, known = e.raws[encString(l[i:end])]
		}
		if !known {
			var err error
			if end, err = e.parseSeries(l, i, n); err != nil {
				return err
			}
			if err := e.makeKey(n); err != nil {
				return err
			}
			slot = e.slotOf()
			e.raws[string(l[i:end])] = slot
		}
		v, ts, hasTS, err := encParseSample(l, end, n)
		if err != nil {
			return err
		}
		if !hasTS || ts == 0 {
			ts = def
		}
		e.add(slot, v, ts)
	}
	return nil
}

// makeKey merges the line's labels with the extra labels, sorts them and
// writes the series key: its 1.0 Label messages, which are unique for a
// sorted label set.
func (e *Encoder) makeKey(n int) error {
	// The line's own labels first, each name once, empty or not.
	e.sorted = append(e.sorted[:0], e.labels...)
	if err := e.sortLabels(n); err != nil {
		return err
	}
	e.sorted = slices.DeleteFunc(e.sorted, func(lb encLabel) bool {
		return lb.v0 == lb.v1 || // an empty value is no label
			lb.n0 != encNameLabel && e.overridden(e.scratch[lb.n0:lb.n1])
	})
	for _, x := range e.extras {
		if x.v0 != x.v1 {
			e.sorted = append(e.sorted, encLabel{n0: x.n0 - 1<<30, n1: x.n1 - 1<<30, v0: x.v0 - 1<<30, v1: x.v1 - 1<<30})
		}
	}
	if err := e.sortLabels(n); err != nil {
		return err
	}
	e.key = e.key[:0]
	for _, lb := range e.sorted {
		name, value := e.nameOf(lb), e.valueOf(lb)
		size := 2 + protowire.SizeBytes(len(name)) + protowire.SizeBytes(len(value))
		e.key = protowire.AppendTag(e.key, 1, protowire.BytesType)
		e.key = protowire.AppendVarint(e.key, uint64(size))
		e.key = protowire.AppendTag(e.key, 1, protowire.BytesType)
		e.key = protowire.AppendString(e.key, name)
		e.key = protowire.AppendTag(e.key, 2, protowire.BytesType)
		e.key = protowire.AppendString(e.key, value)
	}
	return nil
}

// sortLabels sorts e.sorted by name, an insertion sort (a line has a
// handful of labels), and fails on a name given twice.
func (e *Encoder) sortLabels(n int) error {
	for i := 1; i < len(e.sorted); i++ {
		for j := i; j > 0; j-- {
			c := strings.Compare(e.nameOf(e.sorted[j-1]), e.nameOf(e.sorted[j]))
			if c == 0 {
				return encFail(n, "label %s given twice", e.nameOf(e.sorted[j]))
			}
			if c < 0 {
				break
			}
			e.sorted[j-1], e.sorted[j] = e.sorted[j], e.sorted[j-1]
		}
	}
	return nil
}

func (e *Encoder) overridden(name []byte) bool {
	for _, x := range e.extras {
		if string(e.extra[x.n0:x.n1]) == string(name) {
			return true
		}
	}
	return false
}

// nameOf and valueOf return the strings of lb without copying: offsets
// below 0 point into e.extra (shifted by 1<<30), the name label's n0 is
// encNameLabel. The strings alias buffers that the next line overwrites.
func (e *Encoder) nameOf(lb encLabel) string {
	switch {
	case lb.n0 == encNameLabel:
		return "__name__"
	case lb.n0 < 0:
		return encString(e.extra[lb.n0+1<<30 : lb.n1+1<<30])
	}
	return encString(e.scratch[lb.n0:lb.n1])
}

func (e *Encoder) valueOf(lb encLabel) string {
	if lb.n0 < 0 && lb.n0 != encNameLabel {
		return encString(e.extra[lb.v0+1<<30 : lb.v1+1<<30])
	}
	return encString(e.scratch[lb.v0:lb.v1])
}

// slotOf returns the slot of the series in e.key, adding it.
func (e *Encoder) slotOf() int32 {
	slot, ok := e.series[encString(e.key)]
	if !ok {
		k := string(e.key)
		slot = int32(len(e.keys))
		e.series[k] = slot
		e.keys = append(e.keys, k)
		e.slotEpoch = append(e.slotEpoch, 0)
		e.slotPos = append(e.slotPos, 0)
	}
	return slot
}

// add records a sample of the series in slot.
func (e *Encoder) add(slot int32, v float64, ts int64) {
	if e.slotEpoch[slot] != e.epoch {
		e.slotEpoch[slot] = e.epoch
		e.slotPos[slot] = int32(len(e.req))
		e.req = append(e.req, slot)
		e.reqCount = append(e.reqCount, 0)
	}
	pos := e.slotPos[slot]
	e.reqCount[pos]++
	e.smpSeries = append(e.smpSeries, pos)
	e.smpTS = append(e.smpTS, ts)
	e.smpVal = append(e.smpVal, v)
}

// group orders the sample indexes by series (in order of first sample)
// and, within a series, by time: a stable counting sort, then a sort of
// the rare series whose lines came out of order.
func (e *Encoder) group() {
	n := len(e.smpTS)
	e.order = slices.Grow(e.order[:0], n)[:n]
	// reqCount becomes each series' end offset.
	off := int32(0)
	for i, c := range e.reqCount {
		off += c
		e.reqCount[i] = off
	}
	for i := n - 1; i >= 0; i-- {
		p := e.smpSeries[i]
		e.reqCount[p]--
		e.order[e.reqCount[p]] = int32(i)
	}
	// reqCount now holds each series' start offset.
	for r := range e.req {
		seg := e.order[e.reqCount[r]:e.segEnd(r)]
		for i := 1; i < len(seg); i++ {
			if e.smpTS[seg[i]] < e.smpTS[seg[i-1]] {
				slices.SortStableFunc(seg, func(a, b int32) int {
					return encCmpInt64(e.smpTS[a], e.smpTS[b])
				})
				break
			}
		}
	}
}

func (e *Encoder) segEnd(r int) int32 {
	if r+1 < len(e.reqCount) {
		return e.reqCount[r+1]
	}
	return int32(len(e.order))
}

func encCmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// samplesSize is the size of the Sample fields of series r.
func (e *Encoder) samplesSize(r int) int {
	size := 0
	for _, i := range e.order[e.reqCount[r]:e.segEnd(r)] {
		size += 1 + protowire.SizeBytes(encSampleSize(e.smpVal[i], e.smpTS[i]))
	}
	return size
}

func encSampleSize(v float64, ts int64) int {
	n := 0
	if math.Float64bits(v) != 0 {
		n += 9
	}
	if ts != 0 {
		n += 1 + protowire.SizeVarint(uint64(ts))
	}
	return n
}

// appendSamples appends the Sample fields (number 2 in both versions) of
// series r. Zero fields are left out, as proto3 encoders do.
func (e *Encoder) appendSamples(dst []byte, r int) []byte {
	for _, i := range e.order[e.reqCount[r]:e.segEnd(r)] {
		v, ts := e.smpVal[i], e.smpTS[i]
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(encSampleSize(v, ts)))
		if math.Float64bits(v) != 0 {
			dst = protowire.AppendTag(dst, 1, protowire.Fixed64Type)
			dst = protowire.AppendFixed64(dst, math.Float64bits(v))
		}
		if ts != 0 {
			dst = protowire.AppendTag(dst, 2, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(ts))
		}
	}
	return dst
}

// appendV1 appends a prometheus.WriteRequest: timeseries = 1, each with
// labels = 1 (the key as it is) and samples = 2.
func (e *Encoder) appendV1(dst []byte) []byte {
	for r, slot := range e.req {
		key := e.keys[slot]
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(len(key)+e.samplesSize(r)))
		dst = append(dst, key...)
		dst = e.appendSamples(dst, r)
	}
	return dst
}

// encNextLabel reads the first Label message of a series key (which
// makeKey wrote, so it is well formed) and returns the rest of the key.
func encNextLabel(b []byte) (name, value string, rest []byte) {
	_, _, n := protowire.ConsumeTag(b)
	msg, m := protowire.ConsumeBytes(b[n:])
	rest = b[n+m:]
	_, _, n = protowire.ConsumeTag(msg)
	nb, m := protowire.ConsumeBytes(msg[n:])
	msg = msg[n+m:]
	_, _, n = protowire.ConsumeTag(msg)
	vb, _ := protowire.ConsumeBytes(msg[n:])
	return encString(nb), encString(vb), rest
}

func encString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func encBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// ref returns the symbol reference of s in this request, adding it.
func (e *Encoder) ref(s string) uint32 {
	slot, ok := e.symbols[s]
	if !ok {
		k := strings.Clone(s)
		slot = int32(len(e.symKeys))
		e.symbols[k] = slot
		e.symKeys = append(e.symKeys, k)
		e.symEpoch = append(e.symEpoch, 0)
		e.symRef = append(e.symRef, 0)
	}
	if e.symEpoch[slot] != e.epoch {
		e.symEpoch[slot] = e.epoch
		e.symList = append(e.symList, slot)
		e.symRef[slot] = uint32(len(e.symList)) // "" is ref 0
	}
	return e.symRef[slot]
}

// appendV2 appends an io.prometheus.write.v2.Request: symbols = 4 (the
// empty string first), timeseries = 5, each with labels_refs = 1 (packed)
// and samples = 2.
func (e *Encoder) appendV2(dst []byte) []byte {
	if e.symbols == nil || len(e.symKeys) > encMaxInterned {
		e.symbols = make(map[string]int32)
		e.symKeys, e.symEpoch, e.symRef = e.symKeys[:0], e.symEpoch[:0], e.symRef[:0]
	}
	e.symList = e.symList[:0]
	ts := e.tmp[:0]
	for r, slot := range e.req {
		refs := e.refs[:0]
		for b := encBytes(e.keys[slot]); len(b) > 0; {
			var name, value string
			name, value, b = encNextLabel(b)
			refs = append(refs, e.ref(name), e.ref(value))
		}
		e.refs = refs
		packed := 0
		for _, x := range refs {
			packed += protowire.SizeVarint(uint64(x))
		}
		size := 1 + protowire.SizeBytes(packed) + e.samplesSize(r)
		ts = protowire.AppendTag(ts, 5, protowire.BytesType)
		ts = protowire.AppendVarint(ts, uint64(size))
		ts = protowire.AppendTag(ts, 1, protowire.BytesType)
		ts = protowire.AppendVarint(ts, uint64(packed))
		for _, x := range refs {
			ts = protowire.AppendVarint(ts, uint64(x))
		}
		ts = e.appendSamples(ts, r)
	}
	e.tmp = ts
	dst = protowire.AppendTag(dst, 4, protowire.BytesType)
	dst = protowire.AppendString(dst, "")
	for _, slot := range e.symList {
		dst = protowire.AppendTag(dst, 4, protowire.BytesType)
		dst = protowire.AppendString(dst, e.symKeys[slot])
	}
	return append(dst, ts...)
}
