package ship

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// textReader decompresses batch bodies, gzip or zstd (compress.encoding),
// keeping one decoder of each for the next batches. It serves the
// remote-write conversion and the streams. Not safe for concurrent use.
type textReader struct {
	zr *gzip.Reader
	zd *zstd.Decoder
}

// read appends the text of b's compressed body to dst, at most most bytes.
func (t *textReader) read(dst *bytes.Buffer, b *Batch, most int64) error {
	var r io.Reader
	var err error
	switch {
	case b.Zstd && t.zd == nil:
		t.zd, err = zstd.NewReader(bytes.NewReader(b.Body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(most)))
		r = t.zd
	case b.Zstd:
		err = t.zd.Reset(bytes.NewReader(b.Body))
		r = t.zd
	case t.zr == nil:
		t.zr, err = gzip.NewReader(bytes.NewReader(b.Body))
		r = t.zr
	default:
		err = t.zr.Reset(bytes.NewReader(b.Body))
		r = t.zr
	}
	if err != nil {
		return err
	}
	_, err = dst.ReadFrom(io.LimitReader(r, most))
	return err
}
