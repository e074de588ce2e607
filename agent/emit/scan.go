package emit

import (
	"context"
	"math"
	"strconv"
	"unicode/utf8"
)

// Scan collects the lines of one generator run. A generator builds each
// series with Begin, Label and then Value (or Force):
//
//	s.Begin("node_cpu_seconds_total").Label("cpu", "0").Label("mode", "user").Value(12.5)
//
// Building a series does not allocate. Lines go to a pooled buffer, which is
// handed to the Sink when it is nearly full and at Finish.
//
// A Scan is used by one goroutine at a time.
type Scan struct {
	key     []byte // name{labels} of the series being built
	nlabels int
	tail    []byte // " <timestamp ms>\n", or "\n" without timestamps
	ts      int64

	tracker *Tracker
	pool    *Pool
	sink    Sink
	ctx     context.Context
	buf     *Buffer
	err     error

	emitted int
	total   int
}

// NewScan returns a scan that writes buffers from pool to sink. tracker may
// be nil: then every series is written on every scan.
func NewScan(pool *Pool, sink Sink, tracker *Tracker) *Scan {
	return &Scan{
		key:     make([]byte, 0, 256),
		tail:    make([]byte, 0, 24),
		tracker: tracker,
		pool:    pool,
		sink:    sink,
	}
}

// Start begins a run whose samples carry the timestamp tsMillis (milliseconds
// since the epoch; 0 writes no timestamps). It resets the counters.
func (s *Scan) Start(ctx context.Context, tsMillis int64) {
	s.ctx = ctx
	s.ts = tsMillis
	s.tail = s.tail[:0]
	if tsMillis != 0 {
		s.tail = append(s.tail, ' ')
		s.tail = strconv.AppendInt(s.tail, tsMillis, 10)
	}
	s.tail = append(s.tail, '\n')
	s.emitted, s.total = 0, 0
	s.err = nil
	if s.tracker != nil {
		s.tracker.begin()
	}
}

// Timestamp reports the timestamp of the current run in milliseconds.
func (s *Scan) Timestamp() int64 { return s.ts }

// Finish ends the run: the tracker forgets the series not seen in it and the
// last, partly filled buffer goes to the sink. It returns the first error
// met while handing buffers over (a cancelled context, typically).
func (s *Scan) Finish() error {
	if s.tracker != nil {
		s.tracker.end()
	}
	if s.buf != nil && len(s.buf.B) > 0 {
		s.handOff()
	}
	return s.err
}

// Emitted reports how many series were written in the current run.
func (s *Scan) Emitted() int { return s.emitted }

// Total reports how many series the generator produced in the current run,
// written or not.
func (s *Scan) Total() int { return s.total }

// Begin starts a series with the metric name name, which must be a valid
// metric name (generators pass constants).
func (s *Scan) Begin(name string) *Scan {
	s.key = append(s.key[:0], name...)
	s.nlabels = 0
	return s
}

// BeginBytes is Begin for a name held in a byte slice.
func (s *Scan) BeginBytes(name []byte) *Scan {
	s.key = append(s.key[:0], name...)
	s.nlabels = 0
	return s
}

// Label adds a label. value is escaped as the text format requires; bytes
// that are not valid UTF-8 become U+FFFD.
func (s *Scan) Label(name, value string) *Scan {
	s.labelName(name)
	s.key = AppendEscaped(s.key, value)
	s.key = append(s.key, '"')
	return s
}

// LabelBytes is Label for a value held in a byte slice.
func (s *Scan) LabelBytes(name string, value []byte) *Scan {
	s.labelName(name)
	s.key = AppendEscapedBytes(s.key, value)
	s.key = append(s.key, '"')
	return s
}

// LabelInt is Label for an integer value.
func (s *Scan) LabelInt(name string, value int64) *Scan {
	s.labelName(name)
	s.key = strconv.AppendInt(s.key, value, 10)
	s.key = append(s.key, '"')
	return s
}

func (s *Scan) labelName(name string) {
	if s.nlabels == 0 {
		s.key = append(s.key, '{')
	} else {
		s.key = append(s.key, ',')
	}
	s.nlabels++
	s.key = append(s.key, name...)
	s.key = append(s.key, '=', '"')
}

// Value ends the series with value v and writes it if it changed since the
// last run, if its refresh is due, or if the scan has no tracker.
func (s *Scan) Value(v float64) {
	s.closeLabels()
	s.total++
	if s.tracker != nil && !s.tracker.changed(s.key, v) {
		return
	}
	s.write(v)
}

// Force ends the series with value v and writes it unconditionally, without
// recording it in the tracker. Generators use it for the one-off 0 of an
// info label set that was replaced.
func (s *Scan) Force(v float64) {
	s.closeLabels()
	s.write(v)
}

func (s *Scan) closeLabels() {
	if s.nlabels > 0 {
		s.key = append(s.key, '}')
		s.nlabels = 0
	}
}

// Mark returns the position in the run of the next series ended with
// Value, for Carry in the next run of the same Scan (see Run); -1 when
// the scan has no tracker.
func (s *Scan) Mark() int {
	if s.tracker == nil {
		return -1
	}
	return s.tracker.mark()
}

// Run identifies the current run of the scan's tracker: it grows by one
// at each Start. 0 when the scan has no tracker.
func (s *Scan) Run() uint64 {
	if s.tracker == nil {
		return 0
	}
	return s.tracker.cycle
}

// Carry stands for the n series that Value ended from position from (a
// Mark) in the previous run, for a generator that knows their keys and
// values are all unchanged: they count as seen, and the ones whose refresh
// is due are written, exactly as n calls of Begin, Label and Value would
// have done, without building their keys. It reports false, doing
// nothing, when it cannot (no tracker, or no such series in the previous
// run); the generator then writes them as usual.
func (s *Scan) Carry(from, n int) bool {
	if s.tracker == nil || !s.tracker.carry(from, n, s.writeEntry) {
		return false
	}
	s.total += n
	return true
}

func (s *Scan) writeEntry(key []byte, bits uint64) {
	s.key = append(s.key[:0], key...)
	s.write(math.Float64frombits(bits))
}

func (s *Scan) write(v float64) {
	if s.buf == nil {
		if s.err != nil {
			return
		}
		b, err := s.pool.Get(s.ctx)
		if err != nil {
			s.err = err
			return
		}
		s.buf = b
	}
	b := s.buf.B
	b = append(b, s.key...)
	b = append(b, ' ')
	b = AppendValue(b, v)
	b = append(b, s.tail...)
	s.buf.B = b
	s.emitted++
	if len(b) >= BufferSize-FlushMargin {
		s.handOff()
	}
}

func (s *Scan) handOff() {
	b := s.buf
	s.buf = nil
	if err := s.sink.Send(s.ctx, b); err != nil && s.err == nil {
		s.err = err
	}
}

// AppendValue appends v as the text format writes sample values.
func AppendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	a := math.Abs(v)
	if v == math.Trunc(v) && a < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	if a >= 1e-4 && a < 1e15 {
		// Plain decimals read better than 1.79581498414e+09 and are as short.
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// AppendEscaped appends the label value v escaped for the text format:
// backslash, double quote and newline are escaped, invalid UTF-8 becomes
// U+FFFD.
func AppendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			b = appendEscapedASCII(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return b
}

// AppendEscapedBytes is AppendEscaped for a value held in a byte slice.
func AppendEscapedBytes(b []byte, v []byte) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			b = appendEscapedASCII(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return b
}

func appendEscapedASCII(b []byte, c byte) []byte {
	switch c {
	case '\\':
		return append(b, '\\', '\\')
	case '"':
		return append(b, '\\', '"')
	case '\n':
		return append(b, '\\', 'n')
	}
	return append(b, c)
}
