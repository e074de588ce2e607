package remotewrite

import (
	"math"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Test-only request builders: the decoder's tests write requests field by
// field, so that they can also write what no encoder would.

type tSample struct {
	v  float64
	ts int64
}

type tSeries struct {
	labels     [][2]string // name, value, in this order
	samples    []tSample
	histograms int
	exemplars  int
}

func appendMsg(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendStr(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func encSample(s tSample) []byte {
	b := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(s.v))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(s.ts))
}

// encodeV1 writes a prometheus.WriteRequest.
func encodeV1(series []tSeries) []byte {
	var out []byte
	for _, s := range series {
		var ts []byte
		for _, l := range s.labels {
			ts = appendMsg(ts, 1, appendStr(appendStr(nil, 1, l[0]), 2, l[1]))
		}
		for _, x := range s.samples {
			ts = appendMsg(ts, 2, encSample(x))
		}
		for range s.exemplars {
			ts = appendMsg(ts, 3, encSample(tSample{1, 1 << 40}))
		}
		for range s.histograms {
			ts = appendMsg(ts, 4, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3))
		}
		out = appendMsg(out, 1, ts)
	}
	return out
}

// encodeV2 writes an io.prometheus.write.v2.Request, symbols first, labels
// packed.
func encodeV2(series []tSeries) []byte {
	syms := []string{""}
	ref := map[string]uint64{"": 0}
	sym := func(s string) uint64 {
		if r, ok := ref[s]; ok {
			return r
		}
		ref[s] = uint64(len(syms))
		syms = append(syms, s)
		return ref[s]
	}
	var body []byte
	for _, s := range series {
		var refs []byte
		for _, l := range s.labels {
			refs = protowire.AppendVarint(refs, sym(l[0]))
			refs = protowire.AppendVarint(refs, sym(l[1]))
		}
		ts := appendMsg(nil, 1, refs)
		for _, x := range s.samples {
			ts = appendMsg(ts, 2, encSample(x))
		}
		for range s.histograms {
			ts = appendMsg(ts, 3, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3))
		}
		for range s.exemplars {
			ts = appendMsg(ts, 4, encSample(tSample{1, 1 << 40}))
		}
		body = appendMsg(body, 5, ts)
	}
	var out []byte
	for _, s := range syms {
		out = appendStr(out, 4, s)
	}
	return append(out, body...)
}

func compress(msg []byte) []byte { return snappy.Encode(nil, msg) }
