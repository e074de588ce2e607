package ship

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/procfleet/procfleet/prom/remotewrite"
)

// Remote write. Batches are made, queued and spooled in one format, gzip
// text for VictoriaMetrics' import, whatever the upstreams, so that replay
// and failover between upstreams of different protocols keep working: a
// batch is converted when it is sent to a remote-write upstream. The
// extra_label arguments that the import URL would carry (instance and job
// of an agent, those of each request the relay took) become labels of
// every series, the timestamp argument the time of lines without one.
//
// The answers follow the remote-write specification: 2xx is delivered;
// 5xx, 429 and network errors are retried as for import (backoff with
// jitter, Retry-After honoured, failover); any other 4xx refuses the body,
// which is dropped, counted by status and logged with the receiver's
// message, and never retried. A 2.0 upstream that answers 415, or 2xx
// without X-Prometheus-Remote-Write-Samples-Written (one that took the
// body for 1.0 and stored nothing, as VictoriaMetrics v1.151 does), is
// sent 1.0 from then on, the batch at once.

// maxTextBytes bounds a batch's text once decompressed for conversion.
const maxTextBytes = 1 << 30

// rwConv converts batches; the last conversion is kept for the retries of
// the same batch. Safe for concurrent use.
type rwConv struct {
	mu   sync.Mutex
	enc  remotewrite.Encoder
	tr   textReader
	text bytes.Buffer

	ids     uint64 // Batch.conv given out
	last    uint64 // Batch.conv of body
	version int
	body    []byte
}

// encode returns b as a remote-write body of the given version, with the
// extra labels of query (Deps.Query) unless b carries its own.
func (c *rwConv) encode(b *Batch, version int, query url.Values) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.conv == 0 {
		c.ids++
		b.conv = c.ids
	}
	if c.last == b.conv && c.version == version {
		return c.body, nil
	}
	c.last = 0
	text := b.Body
	if !b.Plain {
		c.text.Reset()
		err := c.tr.read(&c.text, b, maxTextBytes)
		if err != nil {
			return nil, fmt.Errorf("cannot decompress the batch: %w", err)
		}
		text = c.text.Bytes()
	}
	var o remotewrite.EncodeOptions
	o.Version = version
	if !b.OwnLabels {
		o.ExtraLabels = append(o.ExtraLabels, query["extra_label"]...)
	}
	if b.Query != "" {
		q, err := url.ParseQuery(b.Query)
		if err != nil {
			return nil, fmt.Errorf("cannot parse the batch's query %q: %w", b.Query, err)
		}
		o.ExtraLabels = append(o.ExtraLabels, q["extra_label"]...)
		if ts := q.Get("timestamp"); ts != "" {
			if o.DefaultTimestamp, err = strconv.ParseInt(ts, 10, 64); err != nil {
				return nil, fmt.Errorf("cannot read the batch's timestamp %q: %w", ts, err)
			}
		}
	}
	// A body of its own: the transport may still read the last one.
	body, _, err := c.enc.Encode(nil, text, o)
	if err != nil {
		return nil, err
	}
	c.last, c.version, c.body = b.conv, version, body
	return body, nil
}

// rwVersion returns the remote-write version ep is sent in, 0 for import.
func (ep *endpoint) rwVersion() int { return int(ep.rw.Load()) }

// protocolState describes ep's protocol for State, with the reason of a
// fallback from 2.0. Call with s.mu held.
func (ep *endpoint) protocolState() string {
	p := ep.proto.String()
	if ep.fellBack != "" {
		p = "remote_write 1.0 (fell back from 2.0: " + ep.fellBack + ")"
	}
	return p
}

// fallBack makes ep, a remote write 2.0 upstream, take 1.0 from now on,
// and says so in its state, log and metrics.
func (s *Shipper) fallBack(ep *endpoint, why string) {
	if !ep.rw.CompareAndSwap(2, 1) {
		return
	}
	s.mu.Lock()
	ep.fellBack = why
	s.mu.Unlock()
	s.set.GetOrCreateCounter(`procfleet_ship_remote_write_fallbacks_total{endpoint="` + labelValue(ep.label) + `"}`).Inc()
	s.logThrottled(slog.LevelWarn, ep.label+" fallback", "upstream does not take remote write 2.0; sending it 1.0 from now on",
		"endpoint", ep.label, "why", why)
}

// needsFallback reports why an answer of a 2.0 upstream shows that it
// does not take 2.0, or "" when it does.
func needsFallback(resp *http.Response) string {
	switch {
	case resp.StatusCode == http.StatusUnsupportedMediaType:
		return "HTTP 415"
	case resp.StatusCode/100 == 2 && resp.Header.Get(remotewrite.EncodeWrittenSamplesHeader) == "":
		return fmt.Sprintf("HTTP %d without %s", resp.StatusCode, remotewrite.EncodeWrittenSamplesHeader)
	}
	return ""
}

// outOfOrder reports whether a refusal's message is a receiver's
// out-of-order or too-old sample error (Prometheus, Mimir, Cortex and
// Thanos without an out-of-order window), as a spool replay after an
// outage meets.
func outOfOrder(excerpt string) bool {
	m := strings.ToLower(excerpt)
	for _, s := range []string{"out of order", "out-of-order", "out of bounds", "too old", "duplicate sample for timestamp"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// countRefused counts a request ep refused with status code.
func (s *Shipper) countRefused(ep *endpoint, code int, excerpt string) {
	l := labelValue(ep.label)
	s.set.GetOrCreateCounter(`procfleet_ship_refused_requests_total{endpoint="` + l + `",status="` + strconv.Itoa(code) + `"}`).Inc()
	if ep.rwVersion() > 0 && outOfOrder(excerpt) {
		s.set.GetOrCreateCounter(`procfleet_ship_out_of_order_refusals_total{endpoint="` + l + `"}`).Inc()
	}
}
