// Package promtext reads the Prometheus text exposition format: Check
// checks bodies of VictoriaMetrics' Prometheus text import for the relay,
// and a ScrapeParser turns a scraped target's body into import lines for
// the agent's scraper (see Scraping below).
//
// Check checks bodies of VictoriaMetrics' Prometheus text import
// (POST /api/v1/import/prometheus) before a relay accepts them. It only
// reads: a body that passes is forwarded byte for byte as it came, and one
// that fails is refused with the line, column and reason of its first fault.
//
// The grammar is VictoriaMetrics' own (v1.151, lib/protoparser/prometheus),
// made strict wherever VictoriaMetrics would log a line and drop it, guess
// at it, or ignore the series later: such a body would be acknowledged and
// then lose data. Every line Check accepts, VictoriaMetrics parses to the
// same series, value and timestamp; the converse does not hold (see
// "Stricter than VictoriaMetrics").
//
// # Lines
//
// Lines end in "\n"; one "\r" before it is dropped. Empty lines, lines of
// spaces and tabs, and lines whose first non-blank byte is '#' (HELP, TYPE
// and other comments) are skipped. Every other line is a sample:
//
//	name[{label="value",...}] value [timestamp]
//
// with spaces or tabs allowed before the name, between the name and '{',
// around label names, '=', values and commas, after '}' and at the end of
// the line; the value and the timestamp are separated by at least one.
//
//   - name: [a-zA-Z_:][a-zA-Z0-9_:]*
//   - label name: [a-zA-Z_][a-zA-Z0-9_]*, not __name__, each at most once
//     per line. "{}" and a trailing comma before '}' are allowed.
//   - label value: double-quoted valid UTF-8 with the escapes \\, \" and \n
//     only; other bytes, tabs included, stand for themselves.
//   - value: a decimal number (-?digits[.digits][e[+-]digits], or .digits),
//     or, in any letter case, NaN, Inf, Infinity with an optional sign
//     before Inf and Infinity. A number too large for a float64 is refused.
//   - timestamp: a decimal number without a sign or with '-', as for values
//     but never NaN or Inf. VictoriaMetrics reads it as milliseconds since
//     the epoch, except that a value in [-2^31, 2^31) is taken as seconds
//     (OpenMetrics) and multiplied by 1000; a fraction is truncated, and 0
//     stands for the time of the import. Values outside (-2^63, 2^63) are
//     refused.
//
// A NUL byte anywhere, comments included, is refused.
//
// # Stricter than VictoriaMetrics
//
// VictoriaMetrics answers 204 to a body with any of the following, and
// drops, changes or hides its data without telling the sender; Check
// refuses them:
//
//   - names with other characters ("foo-bar", "a.b": PromQL selects them
//     only as {__name__="..."}), quoted UTF-8 names
//     (`{"my.metric", "a.b"="c"}`), and empty label names (`{="x"}`, which
//     VictoriaMetrics drops);
//   - escapes other than \\, \" and \n: VictoriaMetrics keeps them as a
//     backslash and the character, so `"C:\temp"` is stored as it stands,
//     but a sender whose escaping is broken loses the distinction between
//     `\n` meant literally and a newline. Senders must escape backslashes;
//   - invalid UTF-8 in label values;
//   - text after the value or timestamp, including OpenMetrics exemplars
//     ("# {trace_id=...} 1"): VictoriaMetrics cuts a line at its first '#'
//     after the labels, so "1#2" would be stored as 1;
//   - a '+' before a numeric value or a timestamp, hexadecimal and '_'
//     (Go's ParseFloat takes them; VictoriaMetrics drops the line); signed
//     NaN (VictoriaMetrics takes it, Go does not); a value beyond float64
//     range (VictoriaMetrics stores ±Inf);
//   - NaN or Inf as a timestamp, or one beyond int64 milliseconds
//     (VictoriaMetrics would store an undefined conversion);
//   - a label __name__ in braces (it would fight the name before them);
//   - series VictoriaMetrics ignores at insert time: more labels than
//     -maxLabelsPerTimeseries, a label name longer than -maxLabelNameLen, or
//     a name or label value longer than -maxLabelValueLen (see Limits).
//
// Check does not look at the timestamps' age: what VictoriaMetrics keeps
// depends on its retention and clock, not on the body. Nor does it refuse
// NaN values, which the format allows and VictoriaMetrics (v1.151) does
// not store.
//
// # Scraping
//
// A ScrapeParser reads what one target answered to a scrape (Prometheus
// text format 0.0.4) and writes its samples, with the target's labels, as
// lines that VictoriaMetrics' import and Check take. It follows
// Prometheus' scrape loop (v3, with the legacy name validation that
// procfleet uses everywhere):
//
//   - the grammar is that of Prometheus' text parser (model/textparse):
//     blanks, commas, quoted names ({"name", "label"="v"}), escapes, HELP
//     and TYPE lines, a value that strconv.ParseFloat takes (but for 'p'
//     and '_'), a timestamp of decimal digits, a NUL byte at the start of
//     a line ending the body. As in Prometheus, blanks before a metric
//     name (taken into the name) and a "\r" before the newline (taken
//     into the value) fail the scrape. le of a histogram and quantile of
//     a summary are rewritten as Prometheus does ("1" becomes "1.0");
//   - the target's labels are merged as honor_labels says and
//     metric_relabel_configs are applied, with Prometheus' semantics
//     (prom/relabel); a series dropped by them is not written;
//   - a sample without a timestamp, or every sample with honor_timestamps
//     false, is stamped with the scrape's time;
//   - a series whose text was seen before in the same body is a
//     duplicate: without a timestamp it is dropped (the first one stays),
//     as Prometheus drops it, and counted;
//   - a sample stamped more than 10 minutes after the scrape is dropped,
//     as Prometheus' head drops it, and so is one stamped before
//     2^31 ms (1970-01-25), which VictoriaMetrics would take for seconds;
//   - sample_limit, label_limit, invalid names and values, and any
//     fault of the text fail the scrape: nothing of it is written.
//
// The common case, no metric_relabel_configs and no clash of a scraped
// label with a target label, builds nothing per sample: the line's name
// and labels are copied, the target's labels (escaped once) spliced in.
//
// Deliberately stricter than Prometheus, so that every line written is
// one VictoriaMetrics stores as Prometheus would: a NUL byte in a label
// value, a newline inside quotes, and series over VictoriaMetrics' limits
// (Limits: labels per series, name and value lengths, line length) fail
// the scrape instead of being stored differently.
package promtext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Limits bound one body. The zero value is invalid; start from
// DefaultLimits.
type Limits struct {
	// MaxBytes bounds the body after decompression, in bytes. A larger
	// body fails with ErrTooLarge after MaxBytes+1 bytes were read.
	// Default 32 MiB, VictoriaMetrics' -maxInsertRequestSize default. The
	// import itself streams without a limit; this one bounds what the relay
	// holds and stores per request.
	MaxBytes int64
	// MaxLineBytes bounds one line, in bytes without its "\n" ("\r"
	// counted). Default 256 KiB: VictoriaMetrics' stream parser fails the
	// rest of the request on a longer line.
	MaxLineBytes int
	// MaxLabels bounds the labels in braces of one line. Default 32:
	// VictoriaMetrics ignores a series with more than 40 labels
	// (-maxLabelsPerTimeseries), counting the name and the labels added
	// with extra_label (instance and job from procfleet agents), so 32
	// leaves room for those and some margin.
	MaxLabels int
	// MaxLabelNameBytes bounds a label name, in bytes. Default 256,
	// VictoriaMetrics' -maxLabelNameLen.
	MaxLabelNameBytes int
	// MaxLabelValueBytes bounds a label value after unescaping, and the
	// metric name, which VictoriaMetrics stores as a label value, in bytes.
	// Default 4 KiB, VictoriaMetrics' -maxLabelValueLen.
	MaxLabelValueBytes int
}

// DefaultLimits returns the limits that match a VictoriaMetrics with
// default flags (see each field of Limits).
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:           32 << 20,
		MaxLineBytes:       256 << 10,
		MaxLabels:          32,
		MaxLabelNameBytes:  256,
		MaxLabelValueBytes: 4 << 10,
	}
}

// Validate reports a limit that is not positive.
func (l Limits) Validate() error {
	switch {
	case l.MaxBytes <= 0:
		return fmt.Errorf("promtext: MaxBytes must be positive, not %d", l.MaxBytes)
	case l.MaxLineBytes <= 0:
		return fmt.Errorf("promtext: MaxLineBytes must be positive, not %d", l.MaxLineBytes)
	case l.MaxLabels <= 0:
		return fmt.Errorf("promtext: MaxLabels must be positive, not %d", l.MaxLabels)
	case l.MaxLabelNameBytes <= 0:
		return fmt.Errorf("promtext: MaxLabelNameBytes must be positive, not %d", l.MaxLabelNameBytes)
	case l.MaxLabelValueBytes <= 0:
		return fmt.Errorf("promtext: MaxLabelValueBytes must be positive, not %d", l.MaxLabelValueBytes)
	}
	return nil
}

// ErrTooLarge is returned, wrapped, for a body larger than Limits.MaxBytes
// after decompression.
var ErrTooLarge = errors.New("promtext: body too large")

// LineError is the first fault of a body that Check refuses.
type LineError struct {
	Line    int    // line number, from 1
	Column  int    // byte offset of the fault in the line, from 1
	Reason  string // what is wrong, and what would be accepted
	Excerpt string // at most excerptBytes of the line around Column, as it came
}

// excerptBytes bounds LineError.Excerpt, so that a refused body of long
// lines does not end up whole in logs and responses.
const excerptBytes = 120

func (e *LineError) Error() string {
	return fmt.Sprintf("promtext: line %d, column %d: %s: %q", e.Line, e.Column, e.Reason, e.Excerpt)
}

// Check reads the body r (already decompressed: see NewGzipReader and
// CheckGzip) to its end and checks every line. It returns the number of
// sample lines and nil, or the first error: a *LineError, an error that
// wraps ErrTooLarge, or the read error, wrapped. On error it stops reading
// at once; it never closes r.
//
// Check blocks in r.Read only: a caller bounds it with the deadline of
// the request. It is safe for concurrent use. In steady state it
// allocates nothing: its buffer comes from a pool and grows only for lines
// longer than 64 KiB. A body that fails is described by an error that
// holds a copy of an excerpt; nothing else of the body is kept.
func Check(r io.Reader, lim Limits) (samples int, err error) {
	res, err := inspect(r, lim)
	return res.Samples, err
}

// Result is what Inspect found in a body.
type Result struct {
	// Samples is the number of sample lines.
	Samples int
	// Untimed is the number of sample lines without a timestamp, which
	// the importer stamps with the request's timestamp argument or its
	// own clock.
	Untimed int
}

// Inspect is Check, also counting the sample lines without a timestamp;
// with gzipped it is CheckGzip.
func Inspect(r io.Reader, lim Limits, gzipped bool) (Result, error) {
	if !gzipped {
		return inspect(r, lim)
	}
	if err := lim.Validate(); err != nil {
		return Result{}, err
	}
	z := GetGzipReader(r, lim.MaxBytes)
	defer PutGzipReader(z)
	return inspect(z, lim)
}

func inspect(r io.Reader, lim Limits) (Result, error) {
	if err := lim.Validate(); err != nil {
		return Result{}, err
	}
	c := checkerPool.Get().(*checker)
	defer c.release()
	n, err := c.check(r, lim)
	return Result{Samples: n, Untimed: c.untimed}, err
}

const (
	// initialBuf holds hundreds of typical lines, so that a read fetches
	// many at once.
	initialBuf = 64 << 10
	// maxPooledBuf bounds what the pool keeps after a body of long lines.
	maxPooledBuf = 1 << 20
	// maxPooledNames bounds the label table the pool keeps.
	maxPooledNames = 1024
	// maxIdleReads is how many reads in a row may return nothing before
	// Check gives up on a reader, as bufio does.
	maxIdleReads = 100
)

var checkerPool = sync.Pool{New: func() any { return new(checker) }}

// checker is the state of one Check call, reused across calls.
type checker struct {
	lim     Limits
	buf     []byte // buf[start:end] is read and not yet checked
	start   int
	end     int
	scan    int   // buf[start:scan] holds no newline
	total   int64 // bytes read
	lineNo  int   // lines before buf[start]
	samples int
	untimed int   // sample lines without a timestamp
	stop    error // to return once the complete lines are checked
	eof     bool
	idle    int    // reads in a row that returned nothing
	names   []span // label names of the current line
	seen    uint64 // hash bits of those names
	last    []byte // metric name of the last line, in lastBuf
	lastBuf [64]byte
}

// span is a range of the current line.
type span struct{ lo, hi int }

func (c *checker) release() {
	if cap(c.buf) > maxPooledBuf {
		c.buf = nil
	}
	if cap(c.names) > maxPooledNames {
		c.names = nil
	}
	c.stop = nil
	checkerPool.Put(c)
}

// check reads r in blocks and checks each complete line in the buffer, so
// that the outcome does not depend on how r splits the body: faults are
// found in order of lines, and the limits apply to the bytes, not to reads.
func (c *checker) check(r io.Reader, lim Limits) (int, error) {
	if cap(c.buf) < initialBuf {
		c.buf = make([]byte, initialBuf)
	}
	*c = checker{lim: lim, buf: c.buf[:cap(c.buf)], names: c.names[:0]}
	c.last = c.lastBuf[:0]
	for {
		if err := c.checkLines(); err != nil {
			return c.samples, err
		}
		if c.end-c.start > lim.MaxLineBytes {
			line := c.buf[c.start : c.start+lim.MaxLineBytes]
			return c.samples, c.lineError(c.lineNo+1, line, lim.MaxLineBytes, reasonLineTooLong)
		}
		if c.stop != nil {
			return c.samples, c.stop
		}
		if c.eof {
			if c.start < c.end {
				c.lineNo++
				sample, err := c.line(c.buf[c.start:c.end], c.lineNo)
				if err != nil {
					return c.samples, err
				}
				if sample {
					c.samples++
				}
			}
			return c.samples, nil
		}
		c.read(r)
	}
}

// checkLines checks the complete lines in the buffer.
func (c *checker) checkLines() error {
	buf, start, scan, end := c.buf, c.start, c.scan, c.end
	defer func() { c.start, c.scan = start, scan }()
	for {
		// A line that trickles in a byte per read is still searched once,
		// not once per read.
		nl := bytes.IndexByte(buf[scan:end], '\n')
		if nl < 0 {
			scan = end
			return nil
		}
		nl += scan
		c.lineNo++
		sample, err := c.line(buf[start:nl], c.lineNo)
		if err != nil {
			return err
		}
		if sample {
			c.samples++
		}
		start, scan = nl+1, nl+1
	}
}

// read makes room in the buffer and reads from r into it, at most up to
// MaxBytes+1 bytes in all. It records the end of the body, or the error
// to return once the lines read so far are checked.
func (c *checker) read(r io.Reader) {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.scan -= c.start
		c.start = 0
	}
	if c.end == len(c.buf) {
		// One line fills the buffer and is still within MaxLineBytes.
		nb := make([]byte, min(2*len(c.buf), c.lim.MaxLineBytes+1))
		copy(nb, c.buf[:c.end])
		c.buf = nb
	}
	want := len(c.buf) - c.end
	if room := c.lim.MaxBytes + 1 - c.total; int64(want) > room {
		want = int(room)
	}
	n, err := r.Read(c.buf[c.end : c.end+want])
	if n < 0 || n > want {
		c.stop = fmt.Errorf("promtext: reader returned %d bytes for a buffer of %d", n, want)
		return
	}
	c.total += int64(n)
	c.end += n
	switch {
	case c.total > c.lim.MaxBytes:
		c.end -= int(c.total - c.lim.MaxBytes)
		c.stop = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.lim.MaxBytes)
	case err == io.EOF:
		c.eof = true
	case err != nil:
		c.stop = readError(err, c.total)
	case n == 0:
		c.idle++
		if c.idle == maxIdleReads {
			c.stop = fmt.Errorf("cannot read body after %d bytes: %w", c.total, io.ErrNoProgress)
		}
	default:
		c.idle = 0
	}
}

// readError wraps err, the error of a read after total bytes, unless it
// already says what happened (a limit or corrupt gzip from GzipReader).
func readError(err error, total int64) error {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorruptGzip) {
		return err
	}
	return fmt.Errorf("cannot read body after %d bytes: %w", total, err)
}

// line checks one line without its "\n" and reports whether it is a sample.
func (c *checker) line(line []byte, no int) (bool, error) {
	if len(line) > c.lim.MaxLineBytes {
		return false, c.lineError(no, line[:c.lim.MaxLineBytes], c.lim.MaxLineBytes, reasonLineTooLong)
	}
	sample, pos, reason := c.parse(line)
	if reason == "" {
		return sample, nil
	}
	// A NUL byte says more about a body than what it broke.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		pos, reason = i, reasonNUL
	}
	return false, c.lineError(no, line, pos, reason)
}

// lineError describes a fault at byte pos of line number no. line holds
// the line, or its first MaxLineBytes bytes when it is too long.
func (c *checker) lineError(no int, line []byte, pos int, reason string) *LineError {
	lo := 0
	if len(line) > excerptBytes {
		lo = min(max(pos-excerptBytes/2, 0), len(line)-excerptBytes)
	}
	hi := min(lo+excerptBytes, len(line))
	return &LineError{
		Line:    no,
		Column:  pos + 1,
		Reason:  c.lim.explain(reason),
		Excerpt: string(line[lo:hi]),
	}
}

// explain adds the limit to the reasons that come from one.
func (l Limits) explain(reason string) string {
	limit := 0
	switch reason {
	case reasonLineTooLong:
		limit = l.MaxLineBytes
	case reasonTooManyLabels:
		limit = l.MaxLabels
	case reasonLabelNameTooLong:
		limit = l.MaxLabelNameBytes
	case reasonLabelValueTooLong, reasonNameTooLong:
		limit = l.MaxLabelValueBytes
	default:
		return reason
	}
	return fmt.Sprintf("%s (limit %d)", reason, limit)
}
