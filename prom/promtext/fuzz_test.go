package promtext

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/gzip"
)

// fuzzLimits derives limits from knob: 0 gives the defaults, anything else
// small limits that short inputs run into.
func fuzzLimits(knob uint16) Limits {
	if knob == 0 {
		return DefaultLimits()
	}
	k := int(knob)
	return Limits{
		MaxBytes:           int64(1 + k%2048),
		MaxLineBytes:       1 + k/7%256,
		MaxLabels:          1 + k%5,
		MaxLabelNameBytes:  1 + k%17,
		MaxLabelValueBytes: 1 + k%33,
	}
}

// FuzzCheck checks that Check does not panic, says the same of a body
// whether it comes plain, gzip-compressed or a byte at a time, counts the
// sample lines of what it accepts, and agrees with the reference
// implementation on every body: accepted or not, and the line at fault.
func FuzzCheck(f *testing.F) {
	for _, tc := range ruleCases {
		f.Add([]byte(tc.body), uint16(0))
		f.Add([]byte(tc.body), uint16(1234))
	}
	f.Add(benchBody(512), uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, knob uint16) {
		lim := fuzzLimits(knob)
		n, err := Check(bytes.NewReader(body), lim)

		zn, zerr := CheckGzip(bytes.NewReader(gzipPooled(body)), lim)
		sameOutcome(t, "gzip", n, err, zn, zerr)
		if len(body) < 1<<10 {
			bn, berr := Check(iotest.OneByteReader(bytes.NewReader(body)), lim)
			sameOutcome(t, "bytewise", n, err, bn, berr)
		}

		var le *LineError
		switch {
		case err == nil:
			if want := sampleLines(body); n != want {
				t.Fatalf("Check = %d samples; the body has %d sample lines", n, want)
			}
		case errors.Is(err, ErrTooLarge):
		case errors.As(err, &le):
		default:
			t.Fatalf("Check = %v; want nil, a LineError or ErrTooLarge", err)
		}

		ref := refCheck(body, lim)
		got := refResult{tooLarge: errors.Is(err, ErrTooLarge)}
		if le != nil {
			got.line = le.Line
		}
		if ref.line != got.line || ref.tooLarge != got.tooLarge || (err == nil && len(ref.samples) != n) {
			t.Fatalf("Check = %d, %v; the reference says line %d, too large %v, %d samples",
				n, err, ref.line, ref.tooLarge, len(ref.samples))
		}
	})
}

// sameOutcome fails unless two checks of one body agree.
func sameOutcome(t *testing.T, how string, n int, err error, n2 int, err2 error) {
	t.Helper()
	var le, le2 *LineError
	switch {
	case err == nil && err2 == nil && n == n2:
	case errors.Is(err, ErrTooLarge) && errors.Is(err2, ErrTooLarge):
	case errors.As(err, &le) && errors.As(err2, &le2) && *le == *le2:
	default:
		t.Fatalf("plain: %d, %v\n%s: %d, %v", n, err, how, n2, err2)
	}
}

// sampleLines counts the lines that are neither blank nor comments.
func sampleLines(body []byte) int {
	n := 0
	for l := range bytes.Lines(body) {
		l = bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		l = bytes.TrimLeft(l, " \t")
		if len(l) > 0 && l[0] != '#' {
			n++
		}
	}
	return n
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func gzipPooled(body []byte) []byte {
	var b bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&b)
	w.Write(body)
	w.Close()
	return b.Bytes()
}
