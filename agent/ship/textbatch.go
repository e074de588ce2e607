package ship

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/agent/compress"
	"github.com/procfleet/procfleet/config"
)

// Text batches. While the shipper streams, the compressor hands it the
// generators' text uncompressed (Batch.Text; the agent asks WantsText at
// the start of each batch): the stream compresses each batch once, with
// the context of those before it, where it used to be compressed by the
// compressor (gzip), decompressed here and compressed again into the
// stream. A text batch that goes anywhere but into a stream (a request of
// its own, the spool, the queue behind a busy sender) is compressed here
// first, as the compressor would have (Deps.Text: gzip at its level, or
// zstd), so that
// nothing downstream of the shipper ever holds or sends plain text it did
// not ask for. A stream keeps the bytes it wrote; what it delivered is
// kept for the redelivery window as that one compressed body, and when it
// fails its body is decompressed and cut back into its batches, each sent
// again on its own (see settleStream).

// packer compresses text batches as compress does; safe for concurrent
// use.
type packer struct {
	mu   sync.Mutex
	cfg  config.Compress
	gz   *gzip.Writer // made on first use, at gzLv
	gzLv int
	zs   *zstd.Encoder // made on first use
	buf  bytes.Buffer
	done func([]byte) // Deps.TextDone
}

// setConfig makes cfg's encoding and level those of the next batches.
func (p *packer) setConfig(cfg config.Compress) {
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
}

// pack replaces the text body of b, if it is a text batch, by its
// compressed form.
func (p *packer) pack(b *Batch) {
	if !b.Text {
		return
	}
	p.mu.Lock()
	p.buf.Reset()
	zstdBody := p.cfg.Encoding == config.EncodingZstd
	if zstdBody {
		if p.zs == nil {
			p.zs = compress.NewZstdEncoder()
		}
		p.zs.Reset(&p.buf)
		_, _ = p.zs.Write(b.Body) // into a bytes.Buffer: no error
		_ = p.zs.Close()
	} else {
		if p.gz == nil || p.gzLv != p.cfg.Level {
			gz, err := gzip.NewWriterLevel(nil, p.cfg.Level)
			if err != nil {
				gz, _ = gzip.NewWriterLevel(nil, gzip.DefaultCompression)
			}
			p.gz, p.gzLv = gz, p.cfg.Level
		}
		p.gz.Reset(&p.buf)
		_, _ = p.gz.Write(b.Body) // into a bytes.Buffer: no error
		_ = p.gz.Close()
	}
	text := b.Body
	b.Body = bytes.Clone(p.buf.Bytes())
	b.Text, b.Zstd = false, zstdBody
	p.mu.Unlock()
	p.release(text)
}

// release gives a text body back to the compressor.
func (p *packer) release(text []byte) {
	if p.done != nil && text != nil {
		p.done(text)
	}
}

// WantsText reports whether the next batch of the generators may come as
// text: the shipper streamed the last one and nothing failed since. Safe
// for concurrent use.
func (s *Shipper) WantsText() bool {
	return s.textOK.Load() && s.q.len() == 0
}

// SetTextConfig sets how text batches not streamed are compressed: as the
// compressor's config says (compress.encoding, compress.level). Safe for
// concurrent use.
func (s *Shipper) SetTextConfig(cfg config.Compress) { s.pk.setConfig(cfg) }
