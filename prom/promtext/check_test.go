package promtext

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/procfleet/procfleet/internal/testenv"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
)

// readers splits a body in the ways a network does; the outcome of Check
// must not depend on it.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"bytewise", iotest.OneByteReader},
	{"halves", iotest.HalfReader},
	{"eof with data", iotest.DataErrReader},
}

func TestCheckRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, rd := range readers {
				n, err := Check(rd.wrap(strings.NewReader(tc.body)), tc.lim())
				checkOutcome(t, rd.name, tc, n, err)
			}
			n, err := CheckGzip(bytes.NewReader(testenv.Gzip(t, tc.body)), tc.lim())
			checkOutcome(t, "gzip", tc, n, err)
		})
	}
}

// checkOutcome compares what Check said of tc's body with the table.
func checkOutcome(t *testing.T, how string, tc ruleCase, n int, err error) {
	t.Helper()
	switch {
	case tc.tooLarge:
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: Check(%q) = %d, %v; want ErrTooLarge", how, tc.body, n, err)
		}
	case tc.accepted():
		if err != nil || n != tc.samples {
			t.Fatalf("%s: Check(%q) = %d, %v; want %d samples", how, tc.body, n, err, tc.samples)
		}
	default:
		var le *LineError
		if !errors.As(err, &le) {
			t.Fatalf("%s: Check(%q) = %d, %v; want a LineError", how, tc.body, n, err)
		}
		if want := tc.lim().explain(tc.reason); le.Line != tc.line || le.Reason != want || (tc.col != 0 && le.Column != tc.col) {
			t.Fatalf("%s: Check(%q): %v\nwant line %d, column %d, reason %q", how, tc.body, le, tc.line, tc.col, want)
		}
	}
}

func TestLineErrorExcerpt(t *testing.T) {
	f := func(body string, lim Limits, wantCol int, wantExcerpt string) {
		t.Helper()
		_, err := Check(strings.NewReader(body), lim)
		var le *LineError
		if !errors.As(err, &le) || le.Column != wantCol || le.Excerpt != wantExcerpt {
			t.Fatalf("Check(%.40q...) = %v; want column %d, excerpt %q", body, err, wantCol, wantExcerpt)
		}
		if !strings.Contains(le.Error(), fmt.Sprintf("%q", wantExcerpt)) {
			t.Fatalf("Error() = %q does not quote the excerpt", le.Error())
		}
	}
	lim := DefaultLimits()
	pad := strings.Repeat("x", 200)
	// A short line whole.
	f("foo bar\n", lim, 5, "foo bar")
	// A fault early in a long line: its first 120 bytes.
	f("1"+pad+" 1\n", lim, 1, ("1" + pad)[:120])
	// A fault late in a long line: 120 bytes around it.
	line := "a{b=\"" + pad + "\",c=\"\\t\",d=\"" + pad + "\"} 1"
	col := strings.Index(line, `\t`) + 1
	f(line+"\n", lim, col, line[col-1-60:col-1+60])
	// At the end of a long line: its last 120 bytes.
	line = "a " + pad + "x"
	f(line, lim, 3, line[:120])
	line = "a{b=\"" + pad + "\"} 1 2 x"
	f(line, lim, len(line), line[len(line)-120:])
	// A line too long: the 120 bytes before the limit, whatever follows.
	lim.MaxLineBytes = 150
	body := "a " + strings.Repeat("1", 300) + "\n"
	f(body, lim, 151, body[30:150])
	f(body[:200], lim, 151, body[30:150])
	// Invalid UTF-8 is quoted, never printed raw.
	_, err := Check(strings.NewReader("a{b=\"\xff\"} 1"), DefaultLimits())
	if err == nil || !strings.Contains(err.Error(), `\xff`) {
		t.Fatalf("error = %v; want the byte escaped", err)
	}
}

func TestCheckTooLargePlain(t *testing.T) {
	// An endless body of valid lines stops after MaxBytes+1 bytes.
	lim := DefaultLimits()
	line := "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1 1700000000000\n"
	src := &countingReader{r: &repeatReader{data: []byte(line)}}
	n, err := Check(src, lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Check = %d, %v; want ErrTooLarge", n, err)
	}
	if src.n != lim.MaxBytes+1 {
		t.Fatalf("read %d bytes; want MaxBytes+1 = %d", src.n, lim.MaxBytes+1)
	}
	if want := int(lim.MaxBytes) / len(line); n != want {
		t.Fatalf("checked %d samples before the limit; want %d", n, want)
	}
}

// repeatReader returns data over and over, without end.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func TestCheckReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	// The lines before the error are checked first.
	_, err := Check(io.MultiReader(strings.NewReader("a 1\nb x\n"), iotest.ErrReader(boom)), DefaultLimits())
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("Check = %v; want the fault of line 2", err)
	}
	n, err := Check(io.MultiReader(strings.NewReader("a 1\nb 2\nc"), iotest.ErrReader(boom)), DefaultLimits())
	if !errors.Is(err, boom) || errors.As(err, &le) || n != 2 || !strings.Contains(err.Error(), "after 9 bytes") {
		t.Fatalf("Check = %d, %v; want 2 samples and the read error", n, err)
	}
	// A reader that returns nothing for ever.
	_, err = Check(iotest.ErrReader(nil), DefaultLimits())
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Check of a stuck reader = %v; want io.ErrNoProgress", err)
	}
	if _, err := Check(strings.NewReader("a 1"), Limits{}); err == nil || !strings.Contains(err.Error(), "MaxBytes") {
		t.Fatalf("Check with zero limits = %v; want a limits error", err)
	}
	if _, err := CheckGzip(strings.NewReader("a 1"), Limits{MaxBytes: 1}); err == nil || !strings.Contains(err.Error(), "MaxLineBytes") {
		t.Fatalf("CheckGzip with bad limits = %v; want a limits error", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(*Limits){
		func(l *Limits) { l.MaxBytes = 0 },
		func(l *Limits) { l.MaxLineBytes = -1 },
		func(l *Limits) { l.MaxLabels = 0 },
		func(l *Limits) { l.MaxLabelNameBytes = 0 },
		func(l *Limits) { l.MaxLabelValueBytes = 0 },
	} {
		lim := DefaultLimits()
		f(&lim)
		if lim.Validate() == nil {
			t.Fatalf("Validate(%+v) = nil", lim)
		}
	}
}

func TestCheckLongLines(t *testing.T) {
	// Lines longer than the initial buffer make it grow, up to the limit.
	lim := DefaultLimits()
	value := strings.Repeat("v", lim.MaxLabelValueBytes)
	labels := make([]string, lim.MaxLabels)
	for i := range labels {
		labels[i] = fmt.Sprintf("label_%d=%q", i, value)
	}
	line := "long{" + strings.Join(labels, ",") + "} 1\n" // about 131 KiB
	body := strings.Repeat("short 1\n", 10000) + line + line + "short 2\n"
	for _, rd := range readers {
		n, err := Check(rd.wrap(strings.NewReader(body)), lim)
		if err != nil || n != 10003 {
			t.Fatalf("%s: Check = %d, %v; want 10003 samples", rd.name, n, err)
		}
	}
	lim.MaxLineBytes = len(line) - 2
	_, err := Check(strings.NewReader(body), lim)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 10001 || le.Column != len(line)-1 {
		t.Fatalf("Check = %v; want line 10001 too long", err)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	// A checker of its own: the pool drops items at random under the race
	// detector.
	body := benchBody(64 << 10)
	r := bytes.NewReader(body)
	lim := DefaultLimits()
	c := new(checker)
	c.check(r, lim)
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(body)
		if _, err := c.check(r, lim); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Check allocates %.1f times per body", allocs)
	}
}

func TestCheckTrickle(t *testing.T) {
	// A 1 MiB line that arrives a byte per read is searched for its end
	// once: searching it again on each read would take minutes.
	lim := DefaultLimits()
	lim.MaxLineBytes = 1 << 20
	line := "trickle " + strings.Repeat("1", 1<<20-len("trickle ")-1) + "\n"
	start := time.Now()
	_, err := Check(iotest.OneByteReader(strings.NewReader(line)), lim)
	var le *LineError
	if !errors.As(err, &le) || le.Reason != reasonValueRange {
		t.Fatalf("Check = %v; want the value out of range", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Check took %v", d)
	}
}

func TestInspectCountsUntimed(t *testing.T) {
	body := "# HELP a x\na 1\na{b=\"c\"} 2 1700000000000\nb 3 \nc 4\t1700000000000\n\nd 5"
	for _, gzipped := range []bool{false, true} {
		var r io.Reader = strings.NewReader(body)
		if gzipped {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
			r = &buf
		}
		res, err := Inspect(r, DefaultLimits(), gzipped)
		if err != nil || res != (Result{Samples: 5, Untimed: 3}) {
			t.Fatalf("gzipped=%v: Inspect = %+v, %v; want 5 samples, 3 without a timestamp", gzipped, res, err)
		}
	}
}
