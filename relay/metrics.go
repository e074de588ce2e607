package relay

import "github.com/VictoriaMetrics/metrics"

// Reasons an import request is refused, the reason label of
// procfleet_relay_rejected_total.
const (
	reasonMethod       = "method"
	reasonUnauthorized = "unauthorized"
	reasonNotReady     = "not_ready"
	reasonQuery        = "bad_query"
	reasonEncoding     = "unsupported_encoding"
	reasonTooLarge     = "too_large"
	reasonBadGzip      = "bad_gzip"
	reasonBadLine      = "bad_line"
	reasonRead         = "read_error"
	reasonTimeout      = "read_timeout"
	reasonBusy         = "busy"
	reasonFull         = "wal_full"
	reasonDisk         = "wal_error"
)

type relayMetrics struct {
	receivedBytes   *metrics.Counter // request bodies as sent, accepted ones
	receivedBatches *metrics.Counter
	receivedSamples *metrics.Counter
	rejected        map[string]*metrics.Counter
	requestSeconds  *metrics.Histogram
	recoverySeconds *metrics.FloatCounter
}

func newRelayMetrics(set *metrics.Set) relayMetrics {
	m := relayMetrics{
		receivedBytes:   set.NewCounter("procfleet_relay_received_bytes_total"),
		receivedBatches: set.NewCounter("procfleet_relay_received_batches_total"),
		receivedSamples: set.NewCounter("procfleet_relay_received_samples_total"),
		rejected:        map[string]*metrics.Counter{},
		requestSeconds:  set.NewHistogram("procfleet_relay_import_seconds"),
		recoverySeconds: set.NewFloatCounter("procfleet_relay_recovery_seconds"),
	}
	for _, r := range []string{reasonMethod, reasonUnauthorized, reasonNotReady, reasonQuery, reasonEncoding,
		reasonTooLarge, reasonBadGzip, reasonBadLine, reasonRead, reasonTimeout, reasonBusy, reasonFull, reasonDisk} {
		m.rejected[r] = set.NewCounter(`procfleet_relay_rejected_total{reason="` + r + `"}`)
	}
	return m
}
