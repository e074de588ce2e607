package scrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

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

// open sends the scrape request of t, whose URL is u, and returns the body
// to parse, limited to limit-1 bytes after decompression; close it. The
// request is bound to ctx, which carries the scrape's timeout.
func open(ctx context.Context, cl *client, t *Target, u *url.URL, limit int64) (io.ReadCloser, error) {
	if !cl.creds.Allows(t.Address) {
		return nil, fail(reasonCredential, fmt.Errorf("the credentials of job %s are pinned to other hosts than %s", t.Job.JobName, t.Address))
	}
	// As http.NewRequestWithContext makes it, without parsing the URL
	// again on every scrape; the transport does not change req.URL.
	req := (&http.Request{
		Method: http.MethodGet, URL: u, Host: u.Host, Header: make(http.Header, 6),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}).WithContext(ctx)
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", encodingHeader)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(timeoutHeader, strconv.FormatFloat(t.Timeout.Seconds(), 'f', -1, 64))
	if err := cl.authorize(req); err != nil {
		return nil, fail(reasonCredential, err)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, fail(reasonOf(ctx, reasonHTTP), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fail(reasonHTTP, fmt.Errorf("server returned HTTP status %s", resp.Status))
	}
	if err := checkFormat(resp.Header.Get("Content-Type")); err != nil {
		resp.Body.Close()
		return nil, fail(reasonFormat, err)
	}
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return &limitedBody{r: resp.Body, c: resp.Body, left: limit - 1}, nil
	case "gzip":
		return &gzipBody{z: promtext.GetGzipReader(resp.Body, limit-1), c: resp.Body}, nil
	default:
		resp.Body.Close()
		return nil, fail(reasonFormat, fmt.Errorf("the target answered with Content-Encoding %q; want gzip or none", enc))
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

// limitedBody reads a plain body and fails once it has more than left
// bytes.
type limitedBody struct {
	r    io.Reader
	c    io.Closer
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

func (b *limitedBody) Close() error { return b.c.Close() }

// gzipBody inflates a gzip body within the limit.
type gzipBody struct {
	z *promtext.GzipReader
	c io.Closer
}

func (b *gzipBody) Read(p []byte) (int, error) {
	n, err := b.z.Read(p)
	if errors.Is(err, promtext.ErrTooLarge) {
		err = ErrBodySizeLimit
	}
	return n, err
}

// Close closes the body and gives the decompressor back to its pool.
func (b *gzipBody) Close() error {
	if b.z != nil {
		promtext.PutGzipReader(b.z)
		b.z = nil
	}
	return b.c.Close()
}
