package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/procfleet/procfleet/prom/promtext"
)

// Headers of a scrape request, as Prometheus sends them for the text
// format: the OpenMetrics and protobuf formats are not asked for.
const (
	acceptHeader   = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
	userAgent      = "procfleet"
	timeoutHeader  = "X-Prometheus-Scrape-Timeout-Seconds"
	encodingHeader = "gzip"
)

// ErrBodySizeLimit is returned, wrapped, for a body of the body size limit
// or more (after decompression), as Prometheus' "body size limit
// exceeded".
var ErrBodySizeLimit = errors.New("body size limit exceeded")

// Failure reasons, the reason label of procfleet_scrape_failures_total.
const (
	reasonHTTP       = "http"
	reasonTimeout    = "timeout"
	reasonBodySize   = "body_size_limit"
	reasonLimit      = "limit"
	reasonParse      = "parse"
	reasonCredential = "credential"
	reasonFormat     = "format"
	reasonConfig     = "config"
)

// failure is an error of a scrape with its reason.
type failure struct {
	reason string
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(reason string, err error) error { return &failure{reason: reason, err: err} }

// open sends the scrape request of t and returns its body as sent, and
// whether it is gzip; close it. The request is bound to ctx, which
// carries the scrape's timeout.
func open(ctx context.Context, cl *client, t *Target) (io.ReadCloser, bool, error) {
	if !cl.creds.Allows(t.Address) {
		return nil, false, fail(reasonCredential, fmt.Errorf("the credentials of job %s are pinned to other hosts than %s", t.Job.JobName, t.Address))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL().String(), http.NoBody)
	if err != nil {
		return nil, false, fail(reasonHTTP, err)
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", encodingHeader)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(timeoutHeader, strconv.FormatFloat(t.Timeout.Seconds(), 'f', -1, 64))
	if err := cl.authorize(req); err != nil {
		return nil, false, fail(reasonCredential, err)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, false, fail(reasonOf(ctx, reasonHTTP), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, false, fail(reasonHTTP, fmt.Errorf("server returned HTTP status %s", resp.Status))
	}
	if err := checkFormat(resp.Header.Get("Content-Type")); err != nil {
		resp.Body.Close()
		return nil, false, fail(reasonFormat, err)
	}
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return resp.Body, false, nil
	case "gzip":
		return resp.Body, true, nil
	default:
		resp.Body.Close()
		return nil, false, fail(reasonFormat, fmt.Errorf("the target answered with Content-Encoding %q; want gzip or none", enc))
	}
}

// checkFormat refuses the formats the parser does not read. A missing or
// unknown Content-Type is read as the text format, as vmagent and
// Prometheus v2 do (Prometheus v3 fails the scrape unless
// fallback_scrape_protocol is set).
func checkFormat(contentType string) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil
	}
	switch mt {
	case "application/openmetrics-text":
		return fmt.Errorf("OpenMetrics is not supported; the target answered %q although asked for text/plain;version=0.0.4: make it serve the Prometheus text format", contentType)
	case "application/vnd.google.protobuf":
		return fmt.Errorf("the protobuf format is not supported; the target answered %q although asked for text/plain;version=0.0.4", contentType)
	}
	return nil
}

// reasonOf returns timeout when ctx's deadline has passed, else r.
func reasonOf(ctx context.Context, r string) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return reasonTimeout
	}
	return r
}

// readRaw reads the body as sent (compressed or not) into buf[:0], and
// fails with ErrBodySizeLimit past most bytes. Scrapes read their bodies
// so before they take a parse slot: a slow target holds no slot, and a
// scrape waiting for one holds its body as sent, not its lines.
func readRaw(r io.Reader, buf []byte, most int64) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			// Doubling from 4 KiB: a scrape waiting for a parse slot
			// holds at most twice its body.
			buf = slices.Grow(buf, min(max(cap(buf), 4<<10), 4<<20))
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), most+1)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > most {
			return buf, ErrBodySizeLimit
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// rawCap is the most a body may take as sent: the limit for a plain one;
// for a gzip one, the limit and what gzip may add to incompressible text
// (its blocks' headers), so that no body within the limit once inflated
// is refused for its compressed size.
func rawCap(limit int64, gz bool) int64 {
	if gz {
		return limit + limit/64 + 4<<10
	}
	return limit
}

// bodyOf returns a reader of the raw body that hands out at most limit-1
// bytes after decompression, and a func to call once it is read.
func bodyOf(raw []byte, gz bool, limit int64) (io.Reader, func()) {
	if !gz {
		return &limitedBody{r: bytes.NewReader(raw), left: limit - 1}, func() {}
	}
	z, _ := gzipReaders.Get().(*promtext.GzipReader)
	if z == nil {
		z = new(promtext.GzipReader)
	}
	z.Reset(bytes.NewReader(raw), limit-1)
	return &gzipBody{z: z}, func() {
		z.Reset(nil, 0)
		gzipReaders.Put(z)
	}
}

// gzipReaders keeps the decompressors of gzip bodies (a 32 KiB window and
// tables each) for the next scrapes, instead of one new per scrape.
var gzipReaders sync.Pool

// limitedBody reads a plain body and fails once it has more than left
// bytes.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrBodySizeLimit
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, ErrBodySizeLimit
	}
	return n, err
}

// gzipBody inflates a gzip body within the limit.
type gzipBody struct {
	z *promtext.GzipReader
}

func (b *gzipBody) Read(p []byte) (int, error) {
	n, err := b.z.Read(p)
	if errors.Is(err, promtext.ErrTooLarge) {
		err = ErrBodySizeLimit
	}
	return n, err
}
