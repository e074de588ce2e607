package promtext

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// ErrCorruptGzip is returned, wrapped with the cause, for a body that is
// not a valid gzip stream: a bad header, a bad block, a checksum that does
// not match, a stream cut short, or bytes after the last member.
var ErrCorruptGzip = errors.New("promtext: corrupt gzip body")

// GzipReader decompresses a gzip body and refuses to hand out more than a
// limit. It reads one or more concatenated members (multi-member gzip, as
// a relay writes when it joins bodies) as one stream.
//
// It takes at most limit+1 bytes from the decompressor, which works at
// most its window (32 KiB) ahead; the one byte past the limit only tells
// that there is more, and is not handed out. A gzip bomb thus costs the
// limit in work and a window in memory, whatever it would inflate to.
//
// Errors: ErrTooLarge (wrapped) past the limit; ErrCorruptGzip (wrapped
// with the cause) for an invalid stream, including an empty body and one
// cut short; an error of the source reader is passed on, wrapped, and is
// never taken for corruption. Once Read has failed, it returns the same
// error.
//
// A GzipReader is not safe for concurrent use. It does not implement
// io.WriterTo, so io.Copy goes through the limit.
type GzipReader struct {
	zr      gzip.Reader
	src     countingReader
	limit   int64
	n       int64 // decompressed bytes taken from zr
	err     error
	started bool
	probe   [1]byte
}

// NewGzipReader returns a reader of the decompressed body r that refuses
// to hand out more than limit bytes. It reads nothing from r until the
// first Read.
func NewGzipReader(r io.Reader, limit int64) *GzipReader {
	z := new(GzipReader)
	z.Reset(r, limit)
	return z
}

// Reset makes z read the body r with the given limit, keeping its
// buffers, so that a pool of readers decompresses without allocating.
func (z *GzipReader) Reset(r io.Reader, limit int64) {
	z.src = countingReader{r: r}
	z.limit = max(limit, 0)
	z.n = 0
	z.err = nil
	z.started = false
}

// Read implements io.Reader.
func (z *GzipReader) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if !z.started {
		z.started = true
		if err := z.zr.Reset(&z.src); err != nil {
			if err == io.EOF {
				err = errors.New("empty body")
			}
			return 0, z.fail(err)
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if z.n >= z.limit {
		// gzip.Reader.Read returns a byte or an error.
		n, err := z.zr.Read(z.probe[:])
		if n > 0 {
			z.n += int64(n)
			z.err = fmt.Errorf("%w: more than %d bytes after decompression", ErrTooLarge, z.limit)
			return 0, z.err
		}
		return 0, z.fail(err)
	}
	if room := z.limit - z.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := z.zr.Read(p)
	z.n += int64(n)
	if err != nil {
		err = z.fail(err)
	}
	return n, err
}

// Decompressed returns the number of bytes decompressed so far, which
// never exceeds the limit by more than one.
func (z *GzipReader) Decompressed() int64 { return z.n }

// Compressed returns the number of bytes read from the source so far.
// The decompressor reads ahead in blocks of a few KiB.
func (z *GzipReader) Compressed() int64 { return z.src.n }

// fail records and returns the error for err from the decompressor.
func (z *GzipReader) fail(err error) error {
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		z.err = io.EOF
	case z.src.err != nil && errors.Is(err, z.src.err):
		z.err = fmt.Errorf("cannot read gzip body after %d bytes: %w", z.src.n, err)
	default:
		z.err = fmt.Errorf("%w after %d bytes: %w", ErrCorruptGzip, z.src.n, err)
	}
	return z.err
}

// countingReader counts what it reads and keeps the source's own error,
// so that it can be told apart from a decompression error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

var gzipPool = sync.Pool{New: func() any { return new(GzipReader) }}

// GetGzipReader is NewGzipReader from a pool: the reader keeps its
// decompressor (a 32 KiB window and its tables) from one body to the
// next. Give it back with PutGzipReader once done with it.
func GetGzipReader(r io.Reader, limit int64) *GzipReader {
	z := gzipPool.Get().(*GzipReader)
	z.Reset(r, limit)
	return z
}

// PutGzipReader gives z, which must not be used any more, to the pool.
func PutGzipReader(z *GzipReader) {
	z.Reset(nil, 0)
	gzipPool.Put(z)
}

// CheckGzip is Check for a gzip body r, decompressed by a pooled
// GzipReader limited to lim.MaxBytes. Besides Check's errors it returns
// ErrCorruptGzip (wrapped) for an invalid gzip stream.
func CheckGzip(r io.Reader, lim Limits) (samples int, err error) {
	res, err := Inspect(r, lim, true)
	return res.Samples, err
}
