package promtext

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// fuzzScrapeParser derives a target's settings from knob.
func fuzzScrapeParser(t *testing.T, knob uint8) *ScrapeParser {
	opt := ScrapeOptions{
		Target:          labels.FromStrings("job", "j", "instance", "h:1"),
		HonorLabels:     knob&1 != 0,
		HonorTimestamps: knob&2 != 0,
	}
	if knob&4 != 0 {
		opt.SampleLimit = 3
	}
	if knob&8 != 0 {
		opt.LabelLimit = 4
	}
	if knob&16 != 0 {
		r, err := relabel.Compile([]config.RelabelConfig{
			rule(config.RelabelDrop, "__name__", "b.*", "", ""),
			rule(config.RelabelLabelMap, "", "x_(.*)", "", "$1"),
		})
		if err != nil {
			t.Fatal(err)
		}
		opt.Rules = r
	}
	p, err := NewScrapeParser(opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzScrapeParse checks that Parse does not panic, says the same of a
// body whether it comes whole or a byte at a time, leaves dst as it was
// when it fails, and writes only lines that Check accepts, one per sample
// it counts as written.
func FuzzScrapeParse(f *testing.F) {
	for _, tc := range scrapeCases {
		f.Add([]byte(tc.body), uint8(2))
		f.Add([]byte(tc.body), uint8(31))
	}
	f.Add(exporterBody(100), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, knob uint8) {
		prefix := []byte("kept 1\n")
		out, st, err := fuzzScrapeParser(t, knob).Parse(bytes.NewReader(body), testStamp, prefix)
		out2, st2, err2 := fuzzScrapeParser(t, knob).Parse(iotest.OneByteReader(bytes.NewReader(body)), testStamp, nil)
		var le, le2 *LineError
		switch {
		case err == nil && err2 == nil:
		case errors.As(err, &le) && errors.As(err2, &le2) && *le == *le2:
		case err != nil && err2 != nil && err.Error() == err2.Error():
		default:
			t.Fatalf("whole: %v\nbytewise: %v", err, err2)
		}
		// Where reading stops (a fault, a NUL) depends on the reads.
		st.Bytes, st2.Bytes = 0, 0
		if st != st2 || !bytes.Equal(out[len(prefix):], out2) {
			t.Fatalf("whole: %+v %q\nbytewise: %+v %q", st, out, st2, out2)
		}
		if err != nil {
			if string(out) != string(prefix) {
				t.Fatalf("failed with %v and wrote %q", err, out)
			}
			return
		}
		n, cerr := Check(bytes.NewReader(out), DefaultLimits())
		if cerr != nil || n != st.Written+1 {
			t.Fatalf("Check of %q: %d samples, %v; want %d", out, n, cerr, st.Written+1)
		}
	})
}
