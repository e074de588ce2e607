package relay

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/prom/promtext"
	"github.com/procfleet/procfleet/prom/remotewrite"
)

// WritePath is the remote write route, as Prometheus and VictoriaMetrics
// name it.
const WritePath = "/api/v1/write"

// Remote write headers (specification 1.0 and 2.0).
const (
	headerWriteVersion      = "X-Prometheus-Remote-Write-Version"
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
	protoV1                 = "prometheus.WriteRequest"
	protoV2                 = "io.prometheus.write.v2.Request"
	contentTypeProtobuf     = "application/x-protobuf"
	maxPooledDecompressed   = 8 << 20
)

// serveWrite takes one remote write request (1.0 or 2.0): the checks,
// limits, log and answers of serveImport, with the body converted to the
// import lines the relay stores (see remotewrite.Decoder), so that the
// log, forwarding and redelivery treat it as any import. 2.0 answers say
// how many samples, histograms and exemplars were written.
func (r *Relay) serveWrite(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	defer r.m.writeSeconds.UpdateDuration(start)
	version, res, err := r.takeWrite(w, req, start)
	if version == 2 {
		h := w.Header()
		h.Set(headerSamplesWritten, strconv.Itoa(res.Samples))
		h.Set(headerHistogramsWritten, "0")
		h.Set(headerExemplarsWritten, "0")
	}
	if err != nil {
		r.answerRefusal(w, req, err, "remote write refused")
		return
	}
	wm := r.m.write[version-1]
	wm.requests.Inc()
	wm.samples.Add(res.Samples)
	wm.histograms.Add(res.Histograms)
	wm.exemplars.Add(res.Exemplars)
	if res.Histograms > 0 {
		r.logThrottled("histograms", "remote write: native histogram samples are not stored; the import format has none",
			"dropped", res.Histograms, "remote", req.RemoteAddr)
	}
	r.m.receivedBatches.Inc()
	r.m.receivedSamples.Add(res.Samples)
	w.WriteHeader(http.StatusNoContent)
}

// takeWrite checks, converts and stores one remote write request. It
// returns the protocol version once known (0 before) and what was
// written. Like take, it reads the body before it takes a slot; the slot
// is held for decompressing and converting.
func (r *Relay) takeWrite(w http.ResponseWriter, req *http.Request, now time.Time) (int, remotewrite.DecodeResult, error) {
	var none remotewrite.DecodeResult
	if req.Method != http.MethodPost {
		return 0, none, refuse(http.StatusMethodNotAllowed, reasonMethod, "method %s is not accepted; want POST", req.Method)
	}
	if r.tokens != nil && !r.tokens.allowed(req) {
		return 0, none, refuse(http.StatusUnauthorized, reasonUnauthorized, "missing or unknown bearer token")
	}
	select {
	case <-r.recovered:
	default:
		return 0, none, refuse(http.StatusServiceUnavailable, reasonNotReady, "the relay is recovering its write-ahead log; retry")
	}
	version, err := writeVersion(req.Header)
	if err != nil {
		return 0, none, err
	}
	query, err := importQuery(req.URL.RawQuery, now)
	if err != nil {
		return version, none, err
	}
	if query.Has("timestamp") {
		return version, none, refuse(http.StatusBadRequest, reasonQuery, "query argument timestamp is not accepted on remote write; every sample carries its own")
	}
	if enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc != "snappy" {
		return version, none, refuse(http.StatusUnsupportedMediaType, reasonEncoding, "Content-Encoding %q is not accepted; remote write wants snappy", enc)
	}
	limit := int64(r.cfg.Import.MaxBodyBytes)
	if req.ContentLength > limit {
		return version, none, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "body of %d bytes is over import.max_body_bytes (%d)", req.ContentLength, limit)
	}
	_ = http.NewResponseController(w).SetReadDeadline(now.Add(r.cfg.Import.ReadTimeout.D()))
	in, err := r.readBody(req, limit)
	if err != nil {
		return version, none, err
	}
	defer in.release()
	enc := query.Encode()
	out := &body{mem: r.mem, noWait: true}
	defer out.release()
	res, err := r.convertWithSlot(req, in, out, version, ship.MaxStoredBody(len(enc)))
	if err != nil || res.Samples == 0 {
		return version, res, err
	}
	if err := r.store(&ship.Chunked{Chunks: out.parts(), Samples: res.Samples, Query: enc, Plain: true}, now); err != nil {
		return version, none, err
	}
	r.m.receivedBytes.Add(int(in.n))
	return version, res, nil
}

// writeVersion returns the remote write version of a request: the proto
// parameter of its Content-Type, else its version header, else 1.
func writeVersion(h http.Header) (int, error) {
	if ct := h.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return 0, refuse(http.StatusUnsupportedMediaType, reasonEncoding, "cannot parse Content-Type %q: %v", ct, err)
		}
		if mt != contentTypeProtobuf {
			return 0, refuse(http.StatusUnsupportedMediaType, reasonEncoding, "Content-Type %q is not accepted; want %s", mt, contentTypeProtobuf)
		}
		switch p := params["proto"]; p {
		case protoV1:
			return 1, nil
		case protoV2:
			return 2, nil
		case "":
		default:
			return 0, refuse(http.StatusUnsupportedMediaType, reasonEncoding, "Content-Type proto=%q is not accepted; want %s (remote write 1.0) or %s (2.0)", p, protoV1, protoV2)
		}
	}
	if strings.HasPrefix(h.Get(headerWriteVersion), "2.") {
		return 2, nil
	}
	return 1, nil
}

// Pools of a relay's converting state. Decompressed buffers larger than
// maxPooledDecompressed are not kept.
var (
	decoderPool = sync.Pool{New: func() any {
		d, _ := remotewrite.NewDecoder(promtext.DefaultLimits())
		return d
	}}
	decompressedPool sync.Pool // *[]byte
)

// convertWithSlot decompresses and converts the body in into out, holding
// a slot of import.max_concurrent and, for the decompressed message (and
// a joined copy of a body read in several chunks), bytes of
// import.max_inflight_bytes. out may hold at most most bytes.
func (r *Relay) convertWithSlot(req *http.Request, in, out *body, version int, most int64) (remotewrite.DecodeResult, error) {
	var none remotewrite.DecodeResult
	select {
	case r.sem <- struct{}{}:
	case <-req.Context().Done():
		return none, refuse(http.StatusServiceUnavailable, reasonRead, "client went away while waiting")
	}
	defer func() { <-r.sem }()
	src, done, err := r.joined(in)
	if err != nil {
		return none, err
	}
	defer done()
	reserved := 0
	if len(in.chunks) > 1 {
		reserved = len(src)
	}
	lim := r.limits()
	n, err := remotewrite.DecodedLen(src, lim)
	if err != nil {
		return none, writeRefusal(err, lim)
	}
	if own := in.held() + int64(reserved+n); own > r.mem.max {
		return none, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge,
			"the request needs %d bytes of memory to decompress, over import.max_inflight_bytes (%d)", own, r.mem.max)
	}
	buf, done2, err := r.scratch(n)
	if err != nil {
		return none, err
	}
	defer done2()
	reserved += n
	msg, err := remotewrite.Decompress(buf, src)
	if err != nil {
		return none, writeRefusal(err, lim)
	}
	d := decoderPool.Get().(*remotewrite.Decoder)
	defer decoderPool.Put(d)
	if err := d.SetLimits(lim); err != nil {
		return none, err
	}
	res, err := d.Decode(msg, version, r.emitTo(req, in, out, int64(reserved), most))
	if err != nil {
		return none, writeRefusal(err, lim)
	}
	return res, nil
}

// emitTo returns the Decoder's emit for a request: it writes lines into
// out, at most most bytes, with chunks of the budget. When the budget
// is spent it tells a busy relay (429) from a request that needs more
// than the whole budget alone (413), which no retry would change; in and
// reserved are what the request holds besides out.
func (r *Relay) emitTo(req *http.Request, in, out *body, reserved, most int64) func([]byte) error {
	return func(p []byte) error {
		if out.n+int64(len(p)) > most {
			return refuse(http.StatusRequestEntityTooLarge, reasonTooLarge,
				"the request, as the import lines the relay stores, is over the %d bytes a write-ahead log record holds; send fewer samples per request", most)
		}
		err := out.write(req.Context(), p)
		var he *httpError
		if errors.As(err, &he) && he.reason == reasonBusy {
			next := int64(minChunk) << min(len(out.chunks), chunkClasses-1)
			if own := in.held() + reserved + out.held() + next; own > r.mem.max {
				return refuse(http.StatusRequestEntityTooLarge, reasonTooLarge,
					"the request needs %d bytes of memory to convert, over import.max_inflight_bytes (%d); send fewer samples per request", own, r.mem.max)
			}
		}
		return err
	}
}

// limits returns the checks of a line, as for imports.
func (r *Relay) limits() promtext.Limits {
	lim := promtext.DefaultLimits()
	lim.MaxBytes = int64(r.cfg.Import.MaxDecompressedBytes)
	lim.MaxLineBytes = int(r.cfg.Import.MaxLineBytes)
	return lim
}

// joined returns the body in one piece: its only chunk, or a copy whose
// bytes are taken from the budget until done is called.
func (r *Relay) joined(in *body) (src []byte, done func(), err error) {
	parts := in.parts()
	if len(parts) == 1 {
		return parts[0], func() {}, nil
	}
	buf, done, err := r.scratch(int(in.n))
	if err != nil {
		return nil, nil, err
	}
	buf = buf[:0]
	for _, p := range parts {
		buf = append(buf, p...)
	}
	return buf, done, nil
}

// scratch returns a buffer of n bytes taken from the budget until done is
// called, 429 when the budget is spent.
func (r *Relay) scratch(n int) (buf []byte, done func(), err error) {
	if !r.mem.reserve(int64(n)) {
		return nil, nil, refuse(http.StatusTooManyRequests, reasonBusy, "the bodies of other requests fill import.max_inflight_bytes; retry")
	}
	var p *[]byte
	if v, ok := decompressedPool.Get().(*[]byte); ok && cap(*v) >= n {
		p = v
	} else {
		b := make([]byte, n)
		p = &b
	}
	return (*p)[:n], func() {
		r.mem.unreserve(int64(n))
		if cap(*p) <= maxPooledDecompressed {
			decompressedPool.Put(p)
		}
	}, nil
}

// writeRefusal turns a fault of a remote write body into its answer.
func writeRefusal(err error, lim promtext.Limits) error {
	var he *httpError
	var de *remotewrite.DecodeError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, remotewrite.ErrDecodedTooLarge):
		return refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "decompressed body is over import.max_decompressed_bytes (%d): %s",
			lim.MaxBytes, strings.TrimPrefix(err.Error(), "remotewrite: "))
	case errors.Is(err, remotewrite.ErrSnappy):
		return refuse(http.StatusBadRequest, reasonBadSnappy, "cannot decompress snappy body: %s", strings.TrimPrefix(err.Error(), "remotewrite: "))
	case errors.As(err, &de):
		return refuse(http.StatusBadRequest, reasonBadSeries, "%s", strings.TrimPrefix(de.Error(), "remotewrite: "))
	}
	return refuse(http.StatusBadRequest, reasonRead, "cannot read body: %v", err)
}
