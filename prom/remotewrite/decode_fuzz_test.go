package remotewrite

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/procfleet/procfleet/prom/promtext"
)

// FuzzDecode feeds the decoder any bytes as a decompressed request of
// either version: it must not panic, its memory must stay bounded by its
// input, and whatever it accepts must be lines the import path's checker
// takes, as many as it counted.
func FuzzDecode(f *testing.F) {
	series := []tSeries{
		{labels: [][2]string{{"__name__", "up"}, {"job", "a"}}, samples: []tSample{{1, ms}, {math.NaN(), ms + 1}}, exemplars: 1},
		{labels: [][2]string{{"__name__", "h"}}, histograms: 1},
		{labels: [][2]string{{"__name__", "x"}, {"p", "a\\\"\n"}}, samples: []tSample{{-1.5, -ms}}},
	}
	f.Add(encodeV1(series), false)
	f.Add(encodeV2(series), true)
	f.Add(encodeV1(series[:1]), true)
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10}, false)
	f.Add(append(appendStr(nil, 4, ""), appendMsg(nil, 5, appendMsg(nil, 1, []byte{0, 0}))...), true)
	lim := promtext.DefaultLimits()
	f.Fuzz(func(t *testing.T, msg []byte, v2 bool) {
		d, _ := NewDecoder(lim)
		version := 1
		if v2 {
			version = 2
		}
		var out bytes.Buffer
		maxPiece := 0
		res, err := d.Decode(msg, version, func(p []byte) error {
			maxPiece = max(maxPiece, len(p))
			out.Write(p)
			return nil
		})
		if maxPiece > flushBytes+lim.MaxLineBytes+1 {
			t.Errorf("emitted a piece of %d bytes", maxPiece)
		}
		if 4*len(d.symbols) > 2*len(msg)+4 || len(d.labels) > d.maxLabels() || len(d.refs) > 2*d.maxLabels() {
			t.Errorf("tables of %d symbols, %d labels from %d bytes", len(d.symbols), len(d.labels), len(msg))
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(msg) {
				t.Fatalf("got %v (%T), want a DecodeError within the message", err, err)
			}
			return
		}
		n, cerr := promtext.Check(&out, lim)
		if cerr != nil || n != res.Samples {
			t.Fatalf("promtext.Check of the output: %d samples, %v; decoder counted %d", n, cerr, res.Samples)
		}
	})
}

// FuzzDecompress feeds any bytes as a snappy body: the decompressed size
// is checked before anything is made for it.
func FuzzDecompress(f *testing.F) {
	f.Add(compress(encodeV1([]tSeries{{labels: [][2]string{{"__name__", "m"}}, samples: []tSample{{1, ms}}}})))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0})
	lim := promtext.DefaultLimits()
	lim.MaxBytes = 1 << 20
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := DecodedLen(body, lim)
		if err != nil {
			if !errors.Is(err, ErrSnappy) && !errors.Is(err, ErrDecodedTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if int64(n) > lim.MaxBytes || n > maxSnappyRatio*len(body) {
			t.Fatalf("took a claim of %d bytes from %d", n, len(body))
		}
		msg, err := Decompress(make([]byte, n), body)
		if err == nil && len(msg) != n {
			t.Fatalf("decompressed %d bytes, header said %d", len(msg), n)
		}
	})
}
