package remotewrite

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the messages read, from prompb's remote.proto and
// types.proto (1.0) and io/prometheus/write/v2/types.proto (2.0).
const (
	v1Timeseries = 1 // WriteRequest.timeseries
	v1Labels     = 1 // TimeSeries.labels
	v1Samples    = 2 // TimeSeries.samples
	v1Exemplars  = 3 // TimeSeries.exemplars
	v1Histograms = 4 // TimeSeries.histograms
	labelName    = 1 // Label.name
	labelValue   = 2 // Label.value
	sampleValue  = 1 // Sample.value, both versions
	sampleTime   = 2 // Sample.timestamp, both versions

	v2Symbols    = 4 // Request.symbols
	v2Timeseries = 5 // Request.timeseries
	v2LabelsRefs = 1 // TimeSeries.labels_refs
	v2Samples    = 2 // TimeSeries.samples
	v2Histograms = 3 // TimeSeries.histograms
	v2Exemplars  = 4 // TimeSeries.exemplars
)

// off returns the offset of b, a slice of the message, in it.
func (d *Decoder) off(b []byte) int { return cap(d.msg) - cap(b) }

// field reads the tag of the field b starts with and, for a
// length-delimited field, its contents. n is the length of the whole
// field. A field of another wire type than want (0 for any) is an error.
func (d *Decoder) field(b []byte, what string, want protowire.Type) (num protowire.Number, typ protowire.Type, val []byte, n int, err error) {
	// The common case first: a length-delimited field of a small number
	// and shorter than 128 bytes, a byte of tag and one of length.
	if len(b) >= 2 && b[0] < 0x80 && b[0]&7 == byte(protowire.BytesType) && b[1] < 0x80 && int(b[1]) <= len(b)-2 && (want == 0 || want == protowire.BytesType) {
		k := 2 + int(b[1])
		return protowire.Number(b[0] >> 3), protowire.BytesType, b[2:k], k, nil
	}
	num, typ, k := protowire.ConsumeTag(b)
	if k < 0 {
		return 0, 0, nil, 0, d.fail(d.off(b), "%s: cannot read a field tag: %v", what, protowire.ParseError(k))
	}
	if want != 0 && typ != want {
		return 0, 0, nil, 0, d.fail(d.off(b), "%s: field %d has wire type %d; want %d", what, num, typ, want)
	}
	var m int
	if typ == protowire.BytesType {
		val, m = protowire.ConsumeBytes(b[k:])
	} else {
		m = protowire.ConsumeFieldValue(num, typ, b[k:])
	}
	if m < 0 {
		return 0, 0, nil, 0, d.fail(d.off(b), "%s: cannot read field %d: %v", what, num, protowire.ParseError(m))
	}
	return num, typ, val, k + m, nil
}

// decodeV1 decodes a prometheus.WriteRequest.
func (d *Decoder) decodeV1() error {
	d.series = -1
	idx := 0
	for b := d.msg; len(b) > 0; {
		num, typ, val, n, err := d.field(b, "WriteRequest", 0)
		if err != nil {
			return err
		}
		if num == v1Timeseries {
			if typ != protowire.BytesType {
				return d.fail(d.off(b), "WriteRequest: field 1 (timeseries) has wire type %d; want 2", typ)
			}
			d.series = idx
			if err := d.seriesV1(val); err != nil {
				return err
			}
			d.series = -1
			idx++
		}
		b = b[n:]
	}
	d.res.Series = idx
	return nil
}

// seriesV1 decodes one prometheus.TimeSeries: its labels first, wherever
// they are in it, then its samples in order.
func (d *Decoder) seriesV1(ts []byte) error {
	d.labels, d.name = d.labels[:0], nil
	samples, histograms, exemplars := 0, 0, 0
	for b := ts; len(b) > 0; {
		num, typ, val, n, err := d.field(b, "TimeSeries", 0)
		if err != nil {
			return err
		}
		switch num {
		case v1Labels, v1Samples, v1Exemplars, v1Histograms:
			if typ != protowire.BytesType {
				return d.fail(d.off(b), "TimeSeries: field %d has wire type %d; want 2", num, typ)
			}
		}
		switch num {
		case v1Labels:
			if len(d.labels) == d.maxLabels() {
				return d.fail(d.off(b), "more than %d labels, empty ones included; at most %d beside __name__ are taken", d.maxLabels(), d.lim.MaxLabels)
			}
			l, err := d.labelV1(val)
			if err != nil {
				return err
			}
			d.labels = append(d.labels, l)
		case v1Samples:
			samples++
		case v1Exemplars:
			exemplars++
		case v1Histograms:
			histograms++
		}
		b = b[n:]
	}
	d.res.Histograms += histograms
	d.res.Exemplars += exemplars
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
		if num == v1Samples {
			if err := d.sample(val, k); err != nil {
				return err
			}
			k++
		}
		b = b[n:]
	}
	return d.flush()
}

// maxLabels bounds the labels of a series read before they are checked,
// so that a request of many empty labels takes no more memory than one
// of labels that count.
func (d *Decoder) maxLabels() int { return 2*d.lim.MaxLabels + 2 }

// labelV1 reads a prometheus.Label.
func (d *Decoder) labelV1(b []byte) (label, error) {
	l := label{off: d.off(b)}
	for len(b) > 0 {
		num, typ, val, n, err := d.field(b, "Label", 0)
		if err != nil {
			return l, err
		}
		if num == labelName || num == labelValue {
			if typ != protowire.BytesType {
				return l, d.fail(d.off(b), "Label: field %d has wire type %d; want 2", num, typ)
			}
			if num == labelName {
				l.name = val
			} else {
				l.value = val
			}
		}
		b = b[n:]
	}
	return l, nil
}

// sample reads the k-th Sample of the current series (the same message in
// both versions) and writes its line.
func (d *Decoder) sample(b []byte, k int) error {
	start := d.off(b)
	// The common case first: value, then timestamp, nothing else.
	if len(b) >= 11 && b[0] == 0x09 && b[9] == 0x10 {
		if x, n := protowire.ConsumeVarint(b[10:]); n == len(b)-10 {
			return d.writeSample(start, k, math.Float64frombits(binary.LittleEndian.Uint64(b[1:9])), int64(x))
		}
	}
	var v float64
	var ts int64
	for len(b) > 0 {
		num, typ, t := protowire.ConsumeTag(b)
		if t < 0 {
			return d.fail(d.off(b), "Sample: cannot read a field tag: %v", protowire.ParseError(t))
		}
		n := 0
		switch {
		case num == sampleValue && typ == protowire.Fixed64Type:
			var x uint64
			x, n = protowire.ConsumeFixed64(b[t:])
			v = math.Float64frombits(x)
		case num == sampleTime && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(b[t:])
			ts = int64(x)
		case num == sampleValue:
			return d.fail(d.off(b), "Sample: field 1 (value) has wire type %d; want 1 (64-bit)", typ)
		case num == sampleTime:
			return d.fail(d.off(b), "Sample: field 2 (timestamp) has wire type %d; want 0 (varint)", typ)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[t:])
		}
		if n < 0 {
			return d.fail(d.off(b), "Sample: cannot read field %d: %v", num, protowire.ParseError(n))
		}
		b = b[t+n:]
	}
	return d.writeSample(start, k, v, ts)
}

// decodeV2 decodes an io.prometheus.write.v2.Request: its symbols first,
// wherever they are in it, then its timeseries in order.
func (d *Decoder) decodeV2() error {
	d.series = -1
	d.symbols = d.symbols[:0]
	for b := d.msg; len(b) > 0; {
		num, typ, _, n, err := d.field(b, "Request", 0)
		if err != nil {
			return err
		}
		switch num {
		case 1, 2, 3:
			return d.fail(d.off(b), "Request: field %d is reserved in remote write 2.0 (1.0 keeps its timeseries in field 1): is this a 1.0 body sent as 2.0?", num)
		case v2Symbols, v2Timeseries:
			if typ != protowire.BytesType {
				return d.fail(d.off(b), "Request: field %d has wire type %d; want 2", num, typ)
			}
		}
		if num == v2Symbols {
			_, _, k := protowire.ConsumeTag(b)
			d.symbols = append(d.symbols, uint32(d.off(b)+k))
		}
		b = b[n:]
	}
	idx := 0
	for b := d.msg; len(b) > 0; {
		num, _, val, n, _ := d.field(b, "Request", 0) // read above
		if num == v2Timeseries {
			d.series = idx
			if err := d.seriesV2(val); err != nil {
				return err
			}
			d.series = -1
			idx++
		}
		b = b[n:]
	}
	d.res.Series = idx
	if cap(d.symbols) > 1<<16 {
		d.symbols = nil
	}
	return nil
}

// symbol returns symbols[ref]; ref is known to be in range.
func (d *Decoder) symbol(ref uint32) []byte {
	v, _ := protowire.ConsumeBytes(d.msg[d.symbols[ref]:])
	return v
}
