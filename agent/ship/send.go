package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/procfleet/procfleet/prom/remotewrite"
)

// outcome is what one attempt means for its batch and its endpoint.
type outcome int

const (
	delivered outcome = iota // 2xx
	rejected                 // other 4xx: drop the batch, endpoint stays healthy
	failed                   // 5xx, unexpected codes, network errors: retry
	busy                     // 429: retry later, endpoint stays healthy
	aborted                  // the send context ended
)

type result struct {
	outcome    outcome
	err        error
	retryAfter time.Duration // from Retry-After, capped at MaxBackoff
	// unreachable marks a failure without an answer from the upstream
	// (refused, reset, timed out, closed before a response) or with an
	// empty 5xx (a proxy's for an upstream it cannot reach): the upstream
	// may have lost what it acknowledged recently.
	unreachable bool
	// fallback marks an answer that made a remote write 2.0 upstream fall
	// back to 1.0: the batch is sent again at once.
	fallback bool
}

// errSendTimeout is the cause of a request whose body was not written
// within Timeouts.Send.
var errSendTimeout = errors.New("request body not written within the send timeout")

const (
	drainLimit   = 64 << 10 // response bytes read so the connection can be reused
	excerptLimit = 256      // response bytes kept for the log line
)

// attempt sends b to ep once, in ep's protocol. A remote write 2.0
// upstream whose answer shows that it does not take 2.0 falls back to
// 1.0, and b is sent again at once.
func (s *Shipper) attempt(ctx context.Context, ep *endpoint, b *Batch) result {
	r := s.attemptOnce(ctx, ep, b)
	if r.fallback {
		r = s.attemptOnce(ctx, ep, b)
	}
	return r
}

// attemptOnce sends b to ep once. It waits for bandwidth credit first.
func (s *Shipper) attemptOnce(ctx context.Context, ep *endpoint, b *Batch) result {
	body, version := b.Body, ep.rwVersion()
	if version > 0 {
		var err error
		if body, err = s.conv.encode(b, version, s.query); err != nil {
			// No remote-write upstream would take it either.
			return result{outcome: rejected, err: fmt.Errorf("ship to %s: cannot convert the batch to remote write: %w", ep.label, err)}
		}
	}
	if s.limiter != nil {
		if err := s.limiter.Wait(ctx, len(body)); err != nil {
			return result{outcome: aborted, err: err}
		}
	}
	to := s.cfg.Timeouts
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The overall deadline is a backstop; each phase has its own bound.
	reqCtx, cancelT := context.WithTimeout(reqCtx, to.Connect.D()+to.Send.D()+to.Response.D())
	defer cancelT()
	w := &sendWatch{d: to.Send.D(), cancel: cancel}
	defer w.stop()
	reqCtx = httptrace.WithClientTrace(reqCtx, w.trace())

	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, s.targetOf(ep, b, version), bytes.NewReader(body))
	if err != nil {
		return result{outcome: failed, err: fmt.Errorf("ship to %s: cannot build request: %w", ep.label, err)}
	}
	switch {
	case version > 0:
		remotewrite.SetEncodeHeaders(req.Header, version)
	case b.Zstd:
		req.Header.Set("Content-Encoding", "zstd")
		req.Header.Set("Content-Type", "text/plain")
	case !b.Plain:
		req.Header.Set("Content-Encoding", "gzip")
		fallthrough
	default:
		req.Header.Set("Content-Type", "text/plain")
	}
	req.Header.Set("User-Agent", "procfleet")
	if err := ep.auth.apply(req); err != nil {
		s.warnThrottled("auth", "cannot refresh credentials; using the last ones read", "err", err)
	}
	start := time.Now()
	resp, err := ep.client.Do(req)
	s.sendSeconds.UpdateDuration(start)
	if err != nil {
		if ctx.Err() != nil {
			return result{outcome: aborted, err: ctx.Err()}
		}
		s.countRequest(ep, "error")
		return result{outcome: failed, unreachable: true, err: fmt.Errorf("ship to %s: %w", ep.label, requestError(err, reqCtx))}
	}
	ep.bytes.Add(len(body))
	s.sent.Add(uint64(len(body)))
	s.countRequest(ep, strconv.Itoa(resp.StatusCode))
	if resp.Header.Get("X-Server-Hostname") != "" {
		ep.vm.Store(true)
	}
	var excerpt string
	if resp.StatusCode/100 != 2 {
		excerpt = readExcerpt(resp.Body)
	}
	drain(resp.Body)
	if version == 2 {
		if why := needsFallback(resp); why != "" {
			s.fallBack(ep, why)
			return result{outcome: failed, fallback: true}
		}
	}
	return s.classify(ep, resp, excerpt, version > 0)
}

// targetOf returns the URL b is sent to on ep: for import the upstream's
// URL with Deps.Query (unless b carries its own labels) and b's query;
// for remote write the upstream's URL as configured, the query arguments
// being in the body.
func (s *Shipper) targetOf(ep *endpoint, b *Batch, version int) string {
	if version > 0 {
		return ep.bare
	}
	target := ep.target
	if b.OwnLabels {
		target = ep.bare
	}
	if b.Query != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + b.Query
	}
	return target
}

// requestError unwraps the url.Error (its URL may carry the query and
// would repeat the endpoint) and names a send timeout.
func requestError(err error, reqCtx context.Context) error {
	if errors.Is(context.Cause(reqCtx), errSendTimeout) {
		return errSendTimeout
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// classify maps an answer to its outcome. For remote write (rw) every
// 4xx but 429 refuses the body, as the specification says; for import
// 401, 403 and 404 are misconfiguration a retry may outlive.
func (s *Shipper) classify(ep *endpoint, resp *http.Response, excerpt string, rw bool) result {
	code := resp.StatusCode
	if code/100 == 2 {
		return result{outcome: delivered}
	}
	err := fmt.Errorf("ship to %s: HTTP %d: %s", ep.label, code, excerpt)
	refused := func() result {
		s.countRefused(ep, code, excerpt)
		return result{outcome: rejected, err: err}
	}
	// An upstream that says why it failed is up; an empty 5xx comes from
	// something in front of one that is not.
	unreachable := code >= 500 && excerpt == ""
	switch {
	case code == http.StatusTooManyRequests:
		return result{outcome: busy, err: err, retryAfter: s.retryAfter(resp.Header)}
	case code == http.StatusServiceUnavailable:
		return result{outcome: failed, err: err, retryAfter: s.retryAfter(resp.Header), unreachable: unreachable}
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge,
		code == http.StatusUnsupportedMediaType, code == http.StatusUnprocessableEntity:
		return refused()
	case rw && code/100 == 4:
		return refused()
	}
	return result{outcome: failed, err: err, unreachable: unreachable}
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date,
// capped at MaxBackoff. It returns 0 when absent or unparsable.
func (s *Shipper) retryAfter(h http.Header) time.Duration {
	return parseRetryAfter(h.Get("Retry-After"), s.now(), s.cfg.Retry.MaxBackoff.D())
}

func parseRetryAfter(v string, now time.Time, ceiling time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(secs, int64(ceiling/time.Second)+1)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), ceiling)
}

// backoff returns a delay for the given retry round: full jitter between
// MinBackoff and MinBackoff*2^round, capped at MaxBackoff.
func (s *Shipper) backoff(round int) time.Duration {
	lo, hi := s.cfg.Retry.MinBackoff.D(), s.cfg.Retry.MaxBackoff.D()
	ceil := hi
	if round < 40 {
		if c := lo << round; c > 0 && c < hi {
			ceil = c
		}
	}
	return lo + rand.N(ceil-lo+1)
}

// readExcerpt reads the start of an error body for a log line.
func readExcerpt(r io.Reader) string {
	var buf [excerptLimit]byte
	n, _ := io.ReadFull(r, buf[:])
	s := strings.TrimSpace(strings.ToValidUTF8(string(buf[:n]), string(utf8.RuneError)))
	return strings.Join(strings.Fields(s), " ")
}

// drain reads a bounded amount of the body so that the connection can be
// reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}

// sendWatch bounds the time from getting a connection to having written
// the request: http.Transport has no write timeout of its own. Its trace
// hooks run on transport goroutines.
type sendWatch struct {
	d      time.Duration
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (w *sendWatch) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.stopped {
				return
			}
			if w.t != nil {
				w.t.Stop()
			}
			w.t = time.AfterFunc(w.d, func() { w.cancel(errSendTimeout) })
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { w.stop() },
	}
}

func (w *sendWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
}

// probe asks an unhealthy endpoint whether it is back: GET /health on its
// host. Any answer but 5xx and 429 counts as back, so that upstreams
// without a /health route (a proxy, a relay) recover too.
func (s *Shipper) probe(ctx context.Context, ep *endpoint) {
	to := s.cfg.Timeouts
	pctx, cancel := context.WithTimeout(ctx, to.Connect.D()+to.Response.D())
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, ep.health, nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "procfleet")
	_ = ep.auth.apply(req) // a failure is logged by attempt
	resp, err := ep.client.Do(req)
	if ctx.Err() != nil {
		if err == nil {
			drain(resp.Body)
		}
		return
	}
	if err != nil {
		s.countProbe(ep, "fail")
		s.markFailure(ep, fmt.Errorf("probe %s: %w", ep.label, requestError(err, pctx)), true, 0)
		s.crashed(ep)
		return
	}
	drain(resp.Body)
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		s.countProbe(ep, "fail")
		s.markFailure(ep, fmt.Errorf("probe %s: HTTP %d", ep.label, resp.StatusCode), true, 0)
		return
	}
	s.countProbe(ep, "ok")
	s.markSuccess(ep, "probe")
}

func (s *Shipper) countProbe(ep *endpoint, res string) {
	s.set.GetOrCreateCounter(`procfleet_ship_probes_total{endpoint="` +
		labelValue(ep.label) + `",result="` + res + `"}`).Inc()
}
