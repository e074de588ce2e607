// Package compress gathers the buffers of all generators into batches and
// compresses them together (gzip, or zstd with compress.encoding), which
// compresses better than each generator alone. A batch is flushed when its compressed size nears the
// target, when the scheduler is idle (every scan due has finished) and the
// previous flush is at least min_flush_interval old, when its oldest line
// reaches the flush age, or when the compressor stops.
package compress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
)

// Batch is one gzip member, or one zstd frame, holding complete lines of
// text exposition format.
type Batch struct {
	// Body is the compressed text; it is owned by the receiver.
	Body []byte
	// Zstd marks a zstd frame; the body is gzip otherwise.
	Zstd bool
	// Text marks a body of plain text, not compressed: made while the
	// receiver asked for text (see SetTextWanted). Its body may go back
	// to the compressor with PutText once the receiver is done with it.
	Text bool
	// Samples is the number of lines in the batch.
	Samples int
	// RawBytes is the size of the text before compression.
	RawBytes int
	// Created is when the first line of the batch arrived.
	Created time.Time
}

// Output receives flushed batches. It must not block for long: the
// compressor does not read new buffers while it runs.
type Output func(Batch)

// Compressor is an emit.Sink that compresses what it is sent. Send is safe
// for concurrent use; Run is called once.
type Compressor struct {
	cfg  config.Compress
	next atomic.Pointer[config.Compress] // a config set by SetConfig, not yet applied
	wake chan struct{}                   // tells Run that next is set
	pool *emit.Pool
	out  Output
	in   chan *emit.Buffer

	zw      encoder // gz or zs, the encoder of the batch being made
	gz      *gzip.Writer
	gzLevel int
	zs      *zstd.Encoder // made on first use
	zbuf    bytes.Buffer
	raw     int
	// Text batches (see SetTextWanted): text says the batch being made is
	// one; free holds bodies given back by PutText.
	wantText atomic.Pointer[func() bool]
	text     bool
	free     chan []byte
	samples  int
	created  time.Time
	flushed  time.Time // when the last batch was flushed

	bytesIn, bytesOut atomic.Uint64
	flushSize         *metrics.Counter
	flushAge          *metrics.Counter
	flushIdle         *metrics.Counter
	flushStop         *metrics.Counter
	batchBytes        *metrics.Histogram
	textBatches       *metrics.Counter
}

// New returns a compressor that returns sent buffers to pool and hands
// batches to out. Its metrics go to set.
func New(cfg config.Compress, pool *emit.Pool, out Output, set *metrics.Set) (*Compressor, error) {
	if err := cfg.Validate("compress"); err != nil {
		return nil, err
	}
	gz, err := gzip.NewWriterLevel(nil, cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("cannot create gzip writer: %w", err)
	}
	c := &Compressor{cfg: cfg, pool: pool, out: out, in: make(chan *emit.Buffer, 8), wake: make(chan struct{}, 1), zw: gz, gz: gz, gzLevel: cfg.Level,
		free: make(chan []byte, 2)}
	c.flushSize = set.NewCounter(`procfleet_compress_flushes_total{reason="size"}`)
	c.flushAge = set.NewCounter(`procfleet_compress_flushes_total{reason="age"}`)
	c.flushIdle = set.NewCounter(`procfleet_compress_flushes_total{reason="idle"}`)
	c.flushStop = set.NewCounter(`procfleet_compress_flushes_total{reason="stop"}`)
	c.batchBytes = set.NewHistogram(`procfleet_compress_batch_bytes`)
	c.textBatches = set.NewCounter(`procfleet_compress_text_batches_total`)
	set.NewGauge(`procfleet_compress_bytes_in_total`, func() float64 { return float64(c.bytesIn.Load()) })
	set.NewGauge(`procfleet_compress_bytes_out_total`, func() float64 { return float64(c.bytesOut.Load()) })
	set.NewGauge(`procfleet_compress_ratio`, func() float64 {
		out := c.bytesOut.Load()
		if out == 0 {
			return 0
		}
		return float64(c.bytesIn.Load()) / float64(out)
	})
	return c, nil
}

// SetConfig applies cfg while Run runs: the target size and flush age at
// at once, the encoding and gzip level from the next batch on. It is safe
// for concurrent use.
func (c *Compressor) SetConfig(cfg config.Compress) error {
	if err := cfg.Validate("compress"); err != nil {
		return err
	}
	c.next.Store(&cfg)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// SetTextWanted makes the compressor ask want, at the start of each batch,
// whether the batch is to be handed on as plain text rather than
// compressed: the shipper wants text while it writes batches into a
// streamed request, which compresses them itself (with the context of the
// batches before), and compresses on its own whatever it sends otherwise.
// The size that flushes a text batch is TargetBytes times textFactor. Safe
// for concurrent use; nil stops asking.
func (c *Compressor) SetTextWanted(want func() bool) {
	if want == nil {
		c.wantText.Store(nil)
		return
	}
	c.wantText.Store(&want)
}

// textFactor scales TargetBytes, a compressed size, to the text size that
// flushes a text batch: the agent's text compresses about 12 times with
// gzip (docs/performance.md).
const textFactor = 8

// PutText gives the body of a text batch back for a later one, once its
// receiver is done with it. Safe for concurrent use.
func (c *Compressor) PutText(body []byte) {
	select {
	case c.free <- body[:0]:
	default:
	}
}

// applyNext takes a config set by SetConfig: the target size and flush age
// apply at once, the encoding and level from the next batch (see add). It reports
// whether the config changed.
func (c *Compressor) applyNext() bool {
	cfg := c.next.Swap(nil)
	if cfg == nil {
		return false
	}
	c.cfg = *cfg
	return true
}

// Send hands b to the compressor. It blocks while the compressor is busy
// with earlier buffers, until ctx is done.
func (c *Compressor) Send(ctx context.Context, b *emit.Buffer) error {
	select {
	case c.in <- b:
		return nil
	case <-ctx.Done():
		c.pool.Put(b)
		return ctx.Err()
	}
}

// idleMark is sent through the input channel by Idle, so that it arrives
// after every buffer sent before it.
var idleMark = new(emit.Buffer)

// Idle flushes the batch once the buffers sent before it are in, unless
// the previous flush is younger than min_flush_interval. The scheduler
// calls it when every scan due has finished, so that a tick's lines leave
// at once instead of after flush_age. It blocks like Send.
func (c *Compressor) Idle(ctx context.Context) error {
	select {
	case c.in <- idleMark:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run compresses until ctx is done, then compresses the buffers already
// sent and flushes the last batch. Stop sending before cancelling ctx so that
// nothing is left behind.
func (c *Compressor) Run(ctx context.Context) error {
	// One timer, armed while a batch is open, for the batch's flush age:
	// the compressor wakes when a batch is due, not every tick (a tick of
	// a tenth of the flush age woke the agent ten times a second).
	age := time.NewTimer(time.Hour)
	age.Stop()
	defer age.Stop()
	armed := false
	arm := func() {
		switch {
		case c.raw > 0 && !armed:
			age.Reset(max(c.cfg.FlushAge.D()-time.Since(c.created), 0))
			armed = true
		case c.raw == 0 && armed:
			age.Stop() // flushed before its age: no wake-up for nothing
			armed = false
		}
	}
	for {
		select {
		case b := <-c.in:
			if b == idleMark {
				if c.raw > 0 && time.Since(c.flushed) >= c.cfg.MinFlushInterval.D() {
					c.flush(c.flushIdle)
					arm()
				}
				continue
			}
			c.add(b)
			arm()
		case <-c.wake:
			if c.applyNext() && armed {
				age.Stop()
				armed = false
				arm() // the new flush age
			}
		case <-age.C:
			armed = false
			if c.raw > 0 && time.Since(c.created) >= c.cfg.FlushAge.D() {
				c.flush(c.flushAge)
			}
			arm() // a younger batch opened since the timer was armed
		case <-ctx.Done():
			for {
				select {
				case b := <-c.in:
					if b != idleMark {
						c.add(b)
					}
					continue
				default:
				}
				break
			}
			if c.raw > 0 {
				c.flush(c.flushStop)
			}
			return nil
		}
	}
}

func (c *Compressor) add(b *emit.Buffer) {
	if len(b.B) == 0 {
		c.pool.Put(b)
		return
	}
	if c.raw == 0 {
		c.start()
	}
	c.raw += len(b.B)
	c.samples += bytes.Count(b.B, []byte{'\n'})
	if c.text {
		c.zbuf.Write(b.B)
		c.pool.Put(b)
		if int64(c.zbuf.Len()) >= int64(c.cfg.TargetBytes)*textFactor {
			c.flush(c.flushSize)
		}
		return
	}
	_, _ = c.zw.Write(b.B) // writes to a bytes.Buffer cannot fail
	c.bytesIn.Add(uint64(len(b.B)))
	c.pool.Put(b)
	if int64(c.zbuf.Len()) >= int64(c.cfg.TargetBytes) {
		c.flush(c.flushSize)
	}
}

// start begins a batch: text when the receiver wants text, else
// compressed as the config asks.
func (c *Compressor) start() {
	c.created = time.Now()
	c.zbuf.Reset()
	want := c.wantText.Load()
	wasText := c.text
	c.text = want != nil && (*want)()
	if c.text {
		if !wasText && c.zw == c.gz {
			// A fresh writer holds no compression state until its first
			// write (about 1 MB at level 5): while text is wanted, the
			// agent keeps none.
			c.gz, _ = gzip.NewWriterLevel(nil, c.gzLevel) // the level was valid
			c.zw = c.gz
		}
		return
	}
	c.zw = c.encoder()
	c.zw.Reset(&c.zbuf)
}

func (c *Compressor) flush(reason *metrics.Counter) {
	if c.text {
		c.flushText(reason)
		return
	}
	_ = c.zw.Close()
	body := bytes.Clone(c.zbuf.Bytes())
	c.bytesOut.Add(uint64(len(body)))
	c.batchBytes.Update(float64(len(body)))
	reason.Inc()
	c.flushed = time.Now()
	_, isZstd := c.zw.(*zstd.Encoder)
	batch := Batch{Body: body, Zstd: isZstd, Samples: c.samples, RawBytes: c.raw, Created: c.created}
	c.raw, c.samples = 0, 0
	c.out(batch)
}

// flushText hands on the text batch being made, in a body given back by
// PutText when one is large enough.
func (c *Compressor) flushText(reason *metrics.Counter) {
	var body []byte
	select {
	case b := <-c.free:
		if cap(b) >= c.zbuf.Len() {
			body = b
		}
	default:
	}
	body = append(body, c.zbuf.Bytes()...)
	if c.zbuf.Cap() > 4*max(c.zbuf.Len(), 64<<10) {
		c.zbuf = bytes.Buffer{} // one large scan does not keep its buffer for good
	}
	reason.Inc()
	c.textBatches.Inc()
	c.flushed = time.Now()
	batch := Batch{Body: body, Text: true, Samples: c.samples, RawBytes: c.raw, Created: c.created}
	c.raw, c.samples = 0, 0
	c.out(batch)
}

// encoder is what gzip.Writer and zstd.Encoder share.
type encoder interface {
	Reset(w io.Writer)
	Write(p []byte) (int, error)
	Close() error
}

// NewZstdEncoder returns the zstd encoder of batches (compress.encoding
// zstd), writing nowhere until Reset: SpeedFastest with a 64 KiB window,
// which on scraped and /proc text is both faster and smaller than larger
// windows (docs/performance.md) and bounds the decoder's memory upstream;
// one goroutine, as its user is one.
func NewZstdEncoder() *zstd.Encoder {
	zs, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(64<<10), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic("compress: zstd options: " + err.Error()) // constant options
	}
	return zs
}

// encoder returns the encoder for the next batch, as the config asks.
func (c *Compressor) encoder() encoder {
	if c.cfg.Encoding == config.EncodingZstd {
		if c.zs == nil {
			c.zs = NewZstdEncoder()
		}
		return c.zs
	}
	if c.gzLevel != c.cfg.Level {
		if gz, err := gzip.NewWriterLevel(nil, c.cfg.Level); err == nil {
			c.gz, c.gzLevel = gz, c.cfg.Level
		}
	}
	return c.gz
}
