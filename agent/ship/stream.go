package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/config"
)

// Streaming. With ship.stream_for above 0, fresh batches go to a
// VictoriaMetrics upstream (one whose answers carry X-Server-Hostname) in
// one import request kept open for stream_for: its body is a single zstd
// (ship.stream_encoding; or gzip) stream, each batch decompressed and
// written into it as a segment ended by a flush, so that VictoriaMetrics
// parses the batch at once and the next one is compressed with the
// context of those before it. The request is sent chunked; its headers
// and its answer serve every segment.
//
// A segment is held until the request ends. On 2xx every segment is
// delivered (and kept for the redelivery window); on anything else the
// endpoint's failure is recorded as for one batch, and every segment is
// sent again whole, one request each, before any other batch (with a
// spool, given one round of endpoints and spooled when none takes it), so
// nothing is lost; VictoriaMetrics may have parsed some of them already,
// and takes the identical samples again as it does after a redelivery.
//
// Everything here runs on the sender goroutine.

// streamLevel is the gzip level of gzip streams.
const streamLevel = 5

// streamWindow is the zstd window of zstd streams: several seconds of an
// agent's text (one second is 50 to 150 KB), so that each batch is
// compressed against the ones before it. At level fastest with lower
// memory the encoder holds about 1.1 MiB (1.7 MiB without, the same
// output). Deflate's 32 KB window holds less
// than one batch, which is why gzip streams gain little (see
// docs/design/agent.md, "Streamed import requests (`ship.stream_for`)").
const streamWindow = 512 << 10

// streamEncoder is a gzip.Writer or a zstd.Encoder.
type streamEncoder interface {
	io.Writer
	Flush() error
	Close() error
}

// newStreamEncoder returns an encoder for ship.stream_encoding enc
// writing to w, reusing old when it is of that encoding.
func newStreamEncoder(enc string, w io.Writer, old streamEncoder) streamEncoder {
	switch e := old.(type) {
	case *zstd.Encoder:
		if enc == config.StreamZstd {
			e.Reset(w)
			return e
		}
	case *gzip.Writer:
		if enc == config.StreamGzip {
			e.Reset(w)
			return e
		}
	}
	if enc == config.StreamGzip {
		zw, _ := gzip.NewWriterLevel(w, streamLevel) // the level is valid
		return zw
	}
	zw, _ := zstd.NewWriter(w, zstd.WithWindowSize(streamWindow), zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true)) // valid options
	return zw
}

// streamIdle is how long an open stream goes without a write before the
// shipper writes an empty sync flush into it: the transport finds a
// connection gone only when it writes, and returns only then.
const streamIdle = time.Second

// stream is one import request whose body is being written.
type stream struct {
	ep      *endpoint
	target  string
	started time.Time
	written time.Time // last write
	pw      *io.PipeWriter
	cancel  context.CancelCauseFunc
	segs    []*Batch
	offs    []int         // where each segment's text starts in the body's text
	lens    []int         // text bytes of each segment
	text    int           // text bytes written into the body
	body    []byte        // every byte written into the body, and the end of the encoding
	zstd    bool          // body is zstd, else gzip
	done    chan struct{} // closed when the request returned
	resp    *http.Response
	err     error
	reqCtx  context.Context
}

// streamState is the shipper's streaming state, the sender goroutine's
// alone.
type streamState struct {
	cur   *stream
	zw    streamEncoder
	tr    textReader
	plain bytes.Buffer
	seg   bytes.Buffer
	// lastBody is the size of the last stream's body.
	lastBody int
	// again holds batches to send one request each before the queue: the
	// segments of a stream that failed.
	again []*Batch
}

// dropDecoder lets the decompression state and buffer go, to be made
// again when a batch must be decompressed.
func (st *streamState) dropDecoder() { st.tr, st.plain = textReader{}, bytes.Buffer{} }

// nextBatch returns the next batch to send: a failed stream's segments
// first, then the queue's oldest.
func (s *Shipper) nextBatch() *Batch {
	if a := s.st.again; len(a) > 0 {
		b := a[0]
		a[0] = nil
		s.st.again = a[1:]
		if len(s.st.again) == 0 {
			s.st.again = nil
		}
		return b
	}
	return s.q.pop()
}

// streamable reports whether b may go into a stream: the generators'
// batches, which all share one target. A scraper's batches (their own
// labels, another target) go one request each beside the stream rather
// than end it.
func (s *Shipper) streamable(b *Batch) bool {
	return s.cfg.StreamFor > 0 && !b.Plain && !b.single && !b.OwnLabels && b.Query == ""
}

// streams reports whether ep takes streamed requests.
func (ep *endpoint) streams() bool {
	return ep.vm.Load() && ep.rwVersion() == 0 && ep.unusable == ""
}

// offer writes b into the open stream, opening one when none is, and
// reports whether it took b; false leaves b to one request of its own. A
// stream that fails or ends is settled here; when the one it ends failed,
// b waits behind its segments (true).
func (s *Shipper) offer(ctx context.Context, b *Batch) bool {
	if !s.streamable(b) {
		return false
	}
	if c := s.st.cur; c != nil && (!s.usable(c.ep) || s.streamOver()) {
		s.endStream(ctx)
		if len(s.st.again) > 0 {
			// The stream failed: its segments go again first, each on
			// its own, and b after them, rather than into a new stream
			// opened at once to the endpoint that just failed.
			s.st.again = append(s.st.again, b)
			return true
		}
	}
	if s.st.cur == nil {
		if s.pending() || ctx.Err() != nil {
			s.textOK.Store(false)
			return false
		}
		p := s.peek()
		if p == nil || !p.streams() {
			s.textOK.Store(false)
			return false
		}
		text, err := s.segmentText(b)
		if err != nil {
			s.warnThrottled("stream", "cannot decompress a batch for streaming; sending it on its own", "err", err)
			return false
		}
		s.openStream(ctx, p, s.targetOf(p, b, 0))
		return s.writeBatch(ctx, b, text)
	}
	text, err := s.segmentText(b)
	if err != nil {
		s.warnThrottled("stream", "cannot decompress a batch for streaming; sending it on its own", "err", err)
		return false
	}
	return s.writeBatch(ctx, b, text)
}

// writeBatch writes b, whose text is text, into the open stream as a
// segment, and settles the stream when the write fails or the stream is
// over. It reports true: b is the stream's from here on.
func (s *Shipper) writeBatch(ctx context.Context, b *Batch, text []byte) bool {
	c := s.st.cur
	c.segs = append(c.segs, b)
	c.offs = append(c.offs, c.text)
	c.lens = append(c.lens, len(text))
	c.text += len(text)
	err := s.writeSegment(ctx, c, text)
	if b.Text {
		// The segment lives on in the stream's body (c.body).
		s.pk.release(b.Body)
		b.Body = nil
		if s.st.tr.zr != nil || s.st.plain.Cap() > 0 {
			// Text flows: what decompressed the batches before is not
			// needed until a stream fails.
			s.st.dropDecoder()
		}
	}
	if err != nil {
		s.failStream(ctx, err)
		return true
	}
	s.textOK.Store(true)
	if s.streamOver() {
		s.endStream(ctx)
	}
	return true
}

// peek returns the endpoint pick would choose now, without moving the
// round robin; nil when none is ready.
func (s *Shipper) peek() *endpoint {
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	p := s.pick(nil)
	if p.state != picked {
		return nil
	}
	if !p.ep.streams() {
		s.mu.Lock()
		s.next = next // leave the turn to deliver
		s.mu.Unlock()
	}
	return p.ep
}

// usable reports whether ep is still an upstream, healthy and not behind
// a Retry-After.
func (s *Shipper) usable(ep *endpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ep.healthy.Load() && contains(s.eps, ep) && !ep.notBefore.After(s.now())
}

// streamOver reports whether the open stream has run for stream_for, or
// its request returned (the upstream answered or went away early).
func (s *Shipper) streamOver() bool {
	c := s.st.cur
	if c == nil {
		return false
	}
	select {
	case <-c.done:
		return true
	default:
	}
	return time.Since(c.started) >= s.cfg.StreamFor.D()
}

// streamTimer returns a channel that fires when the open stream is due to
// end or to be kept alive (nil when none is open), one closed when its
// request returns, and the function that stops the timer.
func (s *Shipper) streamTimer() (due <-chan time.Time, done <-chan struct{}, stop func()) {
	c := s.st.cur
	if c == nil {
		return nil, nil, func() {}
	}
	d := min(s.cfg.StreamFor.D()-time.Since(c.started), streamIdle-time.Since(c.written))
	t := time.NewTimer(max(d, 0))
	return t.C, c.done, func() { t.Stop() }
}

// keepAlive writes an empty sync flush into the open stream when it went
// streamIdle without a write, and settles it when that write fails.
func (s *Shipper) keepAlive(ctx context.Context) {
	c := s.st.cur
	if c == nil || time.Since(c.written) < streamIdle {
		return
	}
	s.st.seg.Reset()
	// An empty line: zstd's flush writes nothing when it holds nothing,
	// and a write of nothing does not reach the connection. VictoriaMetrics
	// skips empty lines.
	_, _ = s.st.zw.Write(newline)
	_ = s.st.zw.Flush()
	c.text++
	c.body = append(c.body, s.st.seg.Bytes()...)
	if err := s.writeStream(c, s.st.seg.Bytes()); err != nil {
		s.failStream(ctx, err)
	}
}

var newline = []byte{'\n'}

// writeStream writes p into c within the send timeout.
func (s *Shipper) writeStream(c *stream, p []byte) error {
	t := time.AfterFunc(s.cfg.Timeouts.Send.D(), func() { c.cancel(errSendTimeout) })
	_, err := c.pw.Write(p)
	t.Stop()
	c.written = time.Now()
	if err != nil {
		return err
	}
	c.ep.bytes.Add(len(p))
	s.sent.Add(uint64(len(p)))
	return nil
}

// openStream starts the request of a stream to ep.
func (s *Shipper) openStream(ctx context.Context, ep *endpoint, target string) {
	pr, pw := io.Pipe()
	reqCtx, cancel := context.WithCancelCause(ctx)
	now := time.Now()
	c := &stream{ep: ep, target: target, started: now, written: now, pw: pw, cancel: cancel, done: make(chan struct{}), reqCtx: reqCtx,
		zstd: s.cfg.StreamEncoding != config.StreamGzip}
	s.st.zw = newStreamEncoder(s.cfg.StreamEncoding, &s.st.seg, s.st.zw)
	// The body grows to about the last stream's size: made at that size
	// at once, it leaves no garbage of its growth.
	c.body = make([]byte, 0, s.st.lastBody+s.st.lastBody/8)
	s.st.cur = c
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, target, pr)
	if err != nil {
		c.err = err
		_ = pr.CloseWithError(err)
		close(c.done)
		return
	}
	req.ContentLength = -1 // chunked
	req.Header.Set("Content-Encoding", s.cfg.StreamEncoding)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", "procfleet")
	if err := ep.auth.apply(req); err != nil {
		s.warnThrottled("auth", "cannot refresh credentials; using the last ones read", "err", err)
	}
	go func() {
		defer close(c.done)
		c.resp, c.err = ep.client.Do(req)
		// An answer before the body ended (an error) fails the writes
		// still to come rather than leaving them blocked.
		_ = pr.CloseWithError(errStreamAnswered)
	}()
	s.streamsOpened.Inc()
}

// errStreamAnswered fails writes into a stream whose request returned.
var errStreamAnswered = errors.New("upstream answered before the stream ended")

// segmentText returns the text of b for a segment, ending with a
// newline: a text batch's body, or the decompressed body in st.plain.
func (s *Shipper) segmentText(b *Batch) ([]byte, error) {
	if b.Text {
		if n := len(b.Body); n > 0 && b.Body[n-1] != '\n' {
			b.Body = append(b.Body, '\n') // a line must not run into the next segment's
		}
		return b.Body, nil
	}
	st := &s.st
	st.plain.Reset()
	if err := st.tr.read(&st.plain, b, maxTextBytes); err != nil {
		return nil, err
	}
	if n := st.plain.Len(); n > 0 && st.plain.Bytes()[n-1] != '\n' {
		st.plain.WriteByte('\n')
	}
	return st.plain.Bytes(), nil
}

// writeSegment compresses text into the stream c, flushes and writes it,
// after the limiter's credit and within the send timeout. The stream's
// body keeps the bytes whether or not they were written.
func (s *Shipper) writeSegment(ctx context.Context, c *stream, text []byte) error {
	st := &s.st
	st.seg.Reset()
	_, _ = st.zw.Write(text) // into a bytes.Buffer: no error
	_ = st.zw.Flush()
	seg := st.seg.Bytes()
	c.body = append(c.body, seg...)
	if s.limiter != nil {
		if err := s.limiter.Wait(ctx, len(seg)); err != nil {
			return err
		}
	}
	if err := s.writeStream(c, seg); err != nil {
		return err
	}
	s.streamSegments.Inc()
	return nil
}

// endStream ends the body of the open stream, waits for the answer and
// settles it.
func (s *Shipper) endStream(ctx context.Context) {
	c := s.st.cur
	s.st.seg.Reset()
	_ = s.st.zw.Close()
	c.body = append(c.body, s.st.seg.Bytes()...)
	err := s.writeStream(c, s.st.seg.Bytes())
	if err == nil {
		_ = c.pw.Close()
	}
	s.settleStream(ctx, err)
}

// failStream ends the open stream after a failed write.
func (s *Shipper) failStream(ctx context.Context, err error) {
	c := s.st.cur
	c.cancel(err)
	_ = c.pw.CloseWithError(err)
	s.st.seg.Reset()
	_ = s.st.zw.Close() // the body is whole again, for settleStream to read
	c.body = append(c.body, s.st.seg.Bytes()...)
	s.settleStream(ctx, err)
}

// settleStream waits for the open stream's request to return and settles
// its segments: delivered, or each to be sent again on its own.
func (s *Shipper) settleStream(ctx context.Context, werr error) {
	c := s.st.cur
	s.st.cur = nil
	s.st.lastBody = len(c.body)
	select {
	case <-c.done:
	case <-ctx.Done():
		// The transport waits for its body reader before it returns.
		_ = c.pw.CloseWithError(ctx.Err())
		c.cancel(ctx.Err())
		<-c.done
	}
	defer c.cancel(nil)
	r := s.streamResult(ctx, c, werr)
	if r.outcome != aborted {
		s.settle(c.ep, r, 0)
	}
	if r.outcome == delivered {
		s.keepBatch(c.ep, c.kept())
		s.streamsDelivered.Inc()
		return
	}
	s.textOK.Store(false)
	if r.unreachable {
		s.crashed(c.ep)
	}
	s.streamsFailed.Inc()
	s.streamResent.Add(len(c.segs))
	if len(c.segs) > 0 {
		s.warnThrottled("stream resend", "streamed request failed; sending each of its batches again on its own",
			"endpoint", c.ep.label, "batches", len(c.segs), "err", r.err)
	}
	s.st.again = append(s.cutStream(c), s.st.again...)
}

// kept returns the batch that stands for c's segments in the redelivery
// window: the body c wrote, whole, in one request.
func (c *stream) kept() *Batch {
	b := &Batch{Body: c.body, Zstd: c.zstd, single: true}
	for i, seg := range c.segs {
		if i == 0 {
			b.Created = seg.Created
		}
		b.Samples += seg.Samples
	}
	return b
}

// cutStream returns c's segments as batches of their own, each to be sent
// again alone: their text, read back from c's body. When the body cannot
// be read (it can only be the encoder's own output), it is sent whole.
func (s *Shipper) cutStream(c *stream) []*Batch {
	if len(c.segs) == 0 {
		return nil
	}
	st := &s.st
	st.plain.Reset()
	whole := c.kept()
	if err := st.tr.read(&st.plain, whole, maxTextBytes); err != nil {
		s.warnThrottled("stream cut", "cannot read a failed stream back; sending it again whole", "err", err)
		return []*Batch{whole}
	}
	text := st.plain.Bytes()
	// A failed stream is rare: its decoder (the stream's window) and text
	// are not kept for the next.
	defer st.dropDecoder()
	if len(text) != c.text {
		s.warnThrottled("stream cut", "a failed stream reads back at another length; sending it again whole",
			"bytes", len(text), "written", c.text)
		return []*Batch{whole}
	}
	out := make([]*Batch, len(c.segs))
	for i, seg := range c.segs {
		b := &Batch{Body: bytes.Clone(text[c.offs[i] : c.offs[i]+c.lens[i]]), Text: true, Samples: seg.Samples, Created: seg.Created, single: true}
		s.pk.pack(b)
		out[i] = b
	}
	return out
}

// streamResult maps the stream's answer to an outcome, as attemptOnce
// does for one batch.
func (s *Shipper) streamResult(ctx context.Context, c *stream, werr error) result {
	if c.err != nil || c.resp == nil {
		if ctx.Err() != nil {
			return result{outcome: aborted, err: ctx.Err()}
		}
		s.countRequest(c.ep, "error")
		err := c.err
		if err == nil {
			err = werr
		}
		return result{outcome: failed, unreachable: true, err: fmt.Errorf("ship to %s: %w", c.ep.label, requestError(err, c.reqCtx))}
	}
	resp := c.resp
	s.countRequest(c.ep, strconv.Itoa(resp.StatusCode))
	var excerpt string
	if resp.StatusCode/100 != 2 {
		excerpt = readExcerpt(resp.Body)
	}
	drain(resp.Body)
	if resp.StatusCode/100 == 2 && werr != nil {
		// Answered 2xx before the body ended: it took part of it.
		return result{outcome: failed, err: fmt.Errorf("ship to %s: stream cut: %w", c.ep.label, werr)}
	}
	return s.classify(c.ep, resp, excerpt, false)
}

// closeStream ends the open stream, if any; its failed segments join
// st.again.
func (s *Shipper) closeStream(ctx context.Context) {
	if s.st.cur != nil {
		s.endStream(ctx)
	}
}
