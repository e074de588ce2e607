package relay

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/prom/promtext"
)

// ImportPath is the import route, as VictoriaMetrics names it.
const ImportPath = "/api/v1/import/prometheus"

func (r *Relay) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(ImportPath, r.serveImport)
	mux.HandleFunc(WritePath, r.serveWrite)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.WritePrometheus(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", r.serveReady)
	// The shipper probes GET /health on its upstreams; a relay upstream of
	// an agent answers like VictoriaMetrics does, once it takes imports.
	mux.HandleFunc("/health", r.serveReady)
	return mux
}

// serveReady answers 200 once the log is recovered and the relay is not
// stopping, 503 before and after.
func (r *Relay) serveReady(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-r.recovered:
	default:
		r.mu.Lock()
		err := r.recovErr
		r.mu.Unlock()
		msg := "recovering the write-ahead log"
		if err != nil {
			msg = "cannot open the write-ahead log: " + err.Error()
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	if r.stopping.Load() {
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("OK\n"))
}

// httpError is a refusal: its status, reason label and message.
type httpError struct {
	code   int
	reason string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func refuse(code int, reason, format string, args ...any) *httpError {
	return &httpError{code: code, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// serveImport takes one import request: it checks method, token, query,
// encoding, size and every line, stores the body as it came in the log,
// and answers 204 once the log holds it durably. Nothing is stored from a
// request that gets any other answer.
func (r *Relay) serveImport(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	defer r.m.requestSeconds.UpdateDuration(start)
	n, err := r.take(w, req, start)
	if err != nil {
		r.answerRefusal(w, req, err, "import refused")
		return
	}
	r.m.receivedBatches.Inc()
	r.m.receivedSamples.Add(n)
	w.WriteHeader(http.StatusNoContent)
}

// answerRefusal answers a request that err refused, counts it by reason,
// and logs refusals that are the relay's own trouble as msg.
func (r *Relay) answerRefusal(w http.ResponseWriter, req *http.Request, err error, msg string) {
	var he *httpError
	if !errors.As(err, &he) {
		he = refuse(http.StatusInternalServerError, reasonDisk, "%v", err)
	}
	r.m.rejected[he.reason].Inc()
	switch he.code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="procfleet relay"`)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	if he.code >= 500 || he.reason == reasonFull {
		r.logThrottled(he.reason, msg, "status", he.code, "err", he.msg, "remote", req.RemoteAddr)
	}
	http.Error(w, he.msg, he.code)
}

// take checks and stores one request and returns its sample count. The
// body is read before the request takes a slot of import.max_concurrent,
// within import.read_timeout and the budget of import.max_inflight_bytes,
// so that slow clients hold neither slots nor more memory than they sent;
// the slot is held for checking alone, and the fsync is waited for
// without one.
func (r *Relay) take(w http.ResponseWriter, req *http.Request, now time.Time) (int, error) {
	if req.Method != http.MethodPost {
		return 0, refuse(http.StatusMethodNotAllowed, reasonMethod, "method %s is not accepted; want POST", req.Method)
	}
	if r.tokens != nil && !r.tokens.allowed(req) {
		return 0, refuse(http.StatusUnauthorized, reasonUnauthorized, "missing or unknown bearer token")
	}
	select {
	case <-r.recovered:
	default:
		return 0, refuse(http.StatusServiceUnavailable, reasonNotReady, "the relay is recovering its write-ahead log; retry")
	}
	query, err := importQuery(req.URL.RawQuery, now)
	if err != nil {
		return 0, err
	}
	plain, zstdBody := false, false
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "gzip", "x-gzip":
	case "zstd":
		zstdBody = true
	case "", "identity":
		plain = true
	default:
		return 0, refuse(http.StatusUnsupportedMediaType, reasonEncoding, "Content-Encoding %q is not accepted; want gzip, zstd or none", enc)
	}
	limit := int64(r.cfg.Import.MaxBodyBytes)
	if req.ContentLength > limit {
		return 0, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "body of %d bytes is over import.max_body_bytes (%d)", req.ContentLength, limit)
	}
	// The deadline counts from here, not from the connection's start, so
	// that a kept-alive connection gives each request the whole timeout.
	_ = http.NewResponseController(w).SetReadDeadline(now.Add(r.cfg.Import.ReadTimeout.D()))
	body, err := r.readBody(req, limit)
	if err != nil {
		return 0, err
	}
	defer body.release()
	parts := body.parts()
	if zstdBody {
		text, err := r.unzstd(req, body)
		if err != nil {
			return 0, err
		}
		defer text.release()
		parts, plain = text.parts(), true
	}
	res, err := r.checkWithSlot(req, parts, plain)
	if err != nil {
		return 0, err
	}
	samples := res.Samples
	if samples == 0 {
		return 0, nil // nothing to store; VictoriaMetrics answers 204 too
	}
	if res.Untimed > 0 && !query.Has("timestamp") {
		// Lines without a timestamp get the time the relay took them, not
		// the time it forwards them, however late that is. Bodies whose
		// lines all carry one keep their arguments as they came, so that
		// consecutive ones share them and are forwarded together.
		query.Set("timestamp", strconv.FormatInt(now.UnixMilli(), 10))
	}
	enc := query.Encode()
	if len(enc) > maxQueryBytes {
		return 0, refuse(http.StatusBadRequest, reasonQuery, "query arguments of %d bytes are over %d", len(enc), maxQueryBytes)
	}
	if err := r.store(&ship.Chunked{Chunks: parts, Samples: samples, Query: enc, Plain: plain}, now); err != nil {
		return 0, err
	}
	r.m.receivedBytes.Add(int(body.n))
	return samples, nil
}

// store writes b to the log and returns a refusal when it cannot.
func (r *Relay) store(b *ship.Chunked, now time.Time) error {
	err := b.Store(r.WAL(), now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, spool.ErrFull):
		return refuse(http.StatusTooManyRequests, reasonFull, "write-ahead log is full (wal.max_bytes); retry later")
	case errors.Is(err, spool.ErrClosed):
		return refuse(http.StatusServiceUnavailable, reasonNotReady, "the relay is stopping; retry")
	}
	return refuse(http.StatusServiceUnavailable, reasonDisk, "cannot store the body: %v", err)
}

// checkWithSlot checks a body read whole, holding a slot of
// import.max_concurrent meanwhile.
func (r *Relay) checkWithSlot(req *http.Request, parts [][]byte, plain bool) (promtext.Result, error) {
	select {
	case r.sem <- struct{}{}:
	case <-req.Context().Done():
		return promtext.Result{}, refuse(http.StatusServiceUnavailable, reasonRead, "client went away while waiting")
	}
	defer func() { <-r.sem }()
	return r.check(&partsReader{parts: parts}, plain)
}

// check validates every line of body and counts its samples.
func (r *Relay) check(body io.Reader, plain bool) (promtext.Result, error) {
	lim := promtext.DefaultLimits()
	lim.MaxBytes = int64(r.cfg.Import.MaxDecompressedBytes)
	lim.MaxLineBytes = int(r.cfg.Import.MaxLineBytes)
	res, err := promtext.Inspect(body, lim, !plain)
	if err == nil {
		return res, nil
	}
	var none promtext.Result
	var le *promtext.LineError
	switch {
	case errors.Is(err, promtext.ErrTooLarge):
		if plain {
			// A plain body within max_body_bytes is over this limit only
			// when max_decompressed_bytes is the smaller.
			return none, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "body is over import.max_decompressed_bytes (%d)", lim.MaxBytes)
		}
		return none, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "decompressed body is over import.max_decompressed_bytes (%d)", lim.MaxBytes)
	case errors.As(err, &le):
		return none, refuse(http.StatusBadRequest, reasonBadLine, "%s", strings.TrimPrefix(le.Error(), "promtext: "))
	case errors.Is(err, promtext.ErrCorruptGzip):
		return none, refuse(http.StatusBadRequest, reasonBadGzip, "cannot decompress gzip body: %s", strings.TrimPrefix(err.Error(), "promtext: "))
	}
	return none, refuse(http.StatusBadRequest, reasonRead, "cannot read body: %v", err)
}

// logThrottled logs at warn, at most once per key every 10 seconds.
func (r *Relay) logThrottled(key, msg string, args ...any) {
	now := time.Now()
	r.logMu.Lock()
	last := r.logAt[key]
	ok := now.Sub(last) >= 10*time.Second
	if ok {
		r.logAt[key] = now
	}
	r.logMu.Unlock()
	if ok {
		r.log.Warn(msg, args...)
	}
}
