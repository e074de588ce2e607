package relay

import (
	"math"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// rwSeries is a series of a remote write request built by the tests.
type rwSeries struct {
	labels [][2]string
	values []float64
	times  []int64
}

func rwMsg(b []byte, num protowire.Number, msg []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), msg)
}

func rwStr(b []byte, num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func rwSample(v float64, ts int64) []byte {
	b := protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), math.Float64bits(v))
	return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(ts))
}

// rwBody returns a snappy-compressed remote write request of version 1
// (prometheus.WriteRequest) or 2 (io.prometheus.write.v2.Request).
func rwBody(version int, series []rwSeries) []byte {
	var out []byte
	if version == 1 {
		for _, s := range series {
			var ts []byte
			for _, l := range s.labels {
				ts = rwMsg(ts, 1, rwStr(rwStr(nil, 1, l[0]), 2, l[1]))
			}
			for i, v := range s.values {
				ts = rwMsg(ts, 2, rwSample(v, s.times[i]))
			}
			out = rwMsg(out, 1, ts)
		}
		return snappy.Encode(nil, out)
	}
	syms, refs := []string{""}, map[string]uint64{"": 0}
	var body []byte
	for _, s := range series {
		var lr []byte
		for _, l := range s.labels {
			for _, x := range l {
				r, ok := refs[x]
				if !ok {
					r = uint64(len(syms))
					refs[x], syms = r, append(syms, x)
				}
				lr = protowire.AppendVarint(lr, r)
			}
		}
		ts := rwMsg(nil, 1, lr)
		for i, v := range s.values {
			ts = rwMsg(ts, 2, rwSample(v, s.times[i]))
		}
		body = rwMsg(body, 5, ts)
	}
	for _, s := range syms {
		out = rwStr(out, 4, s)
	}
	return snappy.Encode(nil, append(out, body...))
}

// rwHeaders returns the headers a remote write sender of version sets.
func rwHeaders(version int) []string {
	if version == 2 {
		return []string{"Content-Encoding", "snappy", "Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request",
			"X-Prometheus-Remote-Write-Version", "2.0.0"}
	}
	return []string{"Content-Encoding", "snappy", "Content-Type", "application/x-protobuf", "X-Prometheus-Remote-Write-Version", "0.1.0"}
}
