package promtext

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/procfleet/procfleet/prom/labels"
)

// metric types that change label values (normalizeFloatsInLabelValues in
// Prometheus' textparse): the last TYPE line read decides, whatever family
// the series belongs to, as in Prometheus.
const (
	typeOther uint8 = iota
	typeHistogram
	typeSummary
)

// scrapeState is the state of one Parse, pooled across parsers.
type scrapeState struct {
	p         *ScrapeParser
	stamp     int64
	stampText []byte
	maxTS     int64
	base      int // len(dst) at the start: lines are written after it
	st        ScrapeStats
	mtype     uint8
	over      bool // the sample limit was passed: nothing more is written
	buf       []byte
	start     int
	end       int
	scan      int
	lineNo    int
	eof       bool
	stop      error
	idle      int
	smp       rawSample
	cur       seriesSet
	b         *labels.Builder
	ls        labels.Labels // the slow path's labels, reused
	out       labels.Labels
	scratch   []byte   // unescaped values of the slow path
	dups      []string // names the current line gives twice
	h         uint64   // hash of the current line's series text
}

func newScrapeState() *scrapeState {
	return &scrapeState{b: labels.NewBuilder(nil)}
}

func (s *scrapeState) begin(p *ScrapeParser, stamp int64, base int) {
	s.p, s.stamp, s.base = p, stamp, base
	s.stampText = appendInt(s.stampText[:0], stamp)
	s.maxTS = stamp + maxAhead.Milliseconds()
	s.st = ScrapeStats{}
	s.mtype, s.over = typeOther, false
	if cap(s.buf) < initialBuf {
		s.buf = make([]byte, initialBuf)
	}
	s.buf = s.buf[:cap(s.buf)]
	s.start, s.end, s.scan, s.lineNo = 0, 0, 0, 0
	s.eof, s.stop, s.idle = false, nil, 0
	s.cur.reset(p.prev.n)
}

func (s *scrapeState) release() {
	if cap(s.buf) > maxPooledBuf {
		s.buf = nil
	}
	if len(s.cur.slots) > 1<<16 {
		s.cur = seriesSet{}
	}
	if cap(s.scratch) > maxPooledBuf {
		s.scratch = nil
	}
	s.p, s.stop = nil, nil
	s.b.Reset(nil)
	clear(s.ls[:cap(s.ls)])
	clear(s.out[:cap(s.out)])
	scrapeStatePool.Put(s)
}

// errEnd stops the line loop at a NUL byte that starts a line, which
// Prometheus' lexer takes for the end of the body.
var errEnd = errors.New("end of body")

// endOK turns errEnd into the end of a body that parsed.
func endOK(dst []byte, err error) ([]byte, error) {
	if err == errEnd {
		return dst, nil
	}
	return dst, err
}

// run reads r line by line, as Check does, and handles each line.
func (s *scrapeState) run(r io.Reader, dst []byte) ([]byte, error) {
	maxLine := s.p.lim.MaxLineBytes
	for {
		for {
			nl := bytes.IndexByte(s.buf[s.scan:s.end], '\n')
			if nl < 0 {
				s.scan = s.end
				break
			}
			nl += s.scan
			var err error
			s.lineNo++
			if dst, err = s.line(s.buf[s.start:nl], dst); err != nil {
				return endOK(dst, err)
			}
			s.start, s.scan = nl+1, nl+1
		}
		if s.end-s.start > maxLine {
			return dst, s.lineError(s.lineNo+1, s.buf[s.start:s.start+maxLine], maxLine, reasonLineTooLong)
		}
		if s.stop != nil {
			return dst, s.stop
		}
		if s.eof {
			if s.start < s.end {
				s.lineNo++
				return endOK(s.line(s.buf[s.start:s.end], dst))
			}
			return dst, nil
		}
		s.read(r)
	}
}

// line handles one line without its "\n".
func (s *scrapeState) line(l []byte, dst []byte) ([]byte, error) {
	if len(l) > s.p.lim.MaxLineBytes {
		return dst, s.lineError(s.lineNo, l[:s.p.lim.MaxLineBytes], s.p.lim.MaxLineBytes, reasonLineTooLong)
	}
	i := skipBlanks(l, 0)
	if i == len(l) {
		return dst, nil
	}
	switch l[i] {
	case '#':
		if pos, reason := s.comment(l, i); reason != "" {
			return dst, s.lineError(s.lineNo, l, pos, reason)
		}
		return dst, nil
	case 0:
		return dst, errEnd
	}
	if pos, reason := s.sample(l, i); reason != "" {
		if j := bytes.IndexByte(l, 0); j >= 0 {
			pos, reason = j, reasonNUL
		}
		return dst, s.lineError(s.lineNo, l, pos, reason)
	}
	return s.emit(l, dst)
}

// read makes room in the buffer and reads from r into it.
func (s *scrapeState) read(r io.Reader) {
	if s.start > 0 {
		s.end = copy(s.buf, s.buf[s.start:s.end])
		s.scan -= s.start
		s.start = 0
	}
	if s.end == len(s.buf) {
		nb := make([]byte, min(2*len(s.buf), s.p.lim.MaxLineBytes+1))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := r.Read(s.buf[s.end:])
	if n < 0 || n > len(s.buf)-s.end {
		s.stop = &ReadError{fmt.Errorf("reader returned %d bytes for a buffer of %d", n, len(s.buf)-s.end)}
		return
	}
	s.st.Bytes += int64(n)
	s.end += n
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.stop = &ReadError{err}
	case n == 0:
		if s.idle++; s.idle == maxIdleReads {
			s.stop = &ReadError{fmt.Errorf("cannot read body after %d bytes: %w", s.st.Bytes, io.ErrNoProgress)}
		}
	default:
		s.idle = 0
	}
}

func (s *scrapeState) lineError(no int, line []byte, pos int, reason string) *LineError {
	lo := 0
	if len(line) > excerptBytes {
		lo = min(max(pos-excerptBytes/2, 0), len(line)-excerptBytes)
	}
	hi := min(lo+excerptBytes, len(line))
	return &LineError{Line: no, Column: pos + 1, Reason: s.p.lim.explain(reason), Excerpt: string(line[lo:hi])}
}
