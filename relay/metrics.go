package relay

import (
	"strconv"

	"github.com/VictoriaMetrics/metrics"
)

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
	reasonBadZstd      = "bad_zstd"
	reasonBadLine      = "bad_line"
	reasonBadSnappy    = "bad_snappy"
	reasonBadSeries    = "bad_series"
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
	writeSeconds    *metrics.Histogram
	write           [2]writeMetrics // remote write 1.0 and 2.0
	recoverySeconds *metrics.FloatCounter
}

func newRelayMetrics(set *metrics.Set) relayMetrics {
	m := relayMetrics{
		receivedBytes:   set.NewCounter("procfleet_relay_received_bytes_total"),
		receivedBatches: set.NewCounter("procfleet_relay_received_batches_total"),
		receivedSamples: set.NewCounter("procfleet_relay_received_samples_total"),
		rejected:        map[string]*metrics.Counter{},
		requestSeconds:  set.NewHistogram("procfleet_relay_import_seconds"),
		writeSeconds:    set.NewHistogram("procfleet_relay_remote_write_seconds"),
		recoverySeconds: set.NewFloatCounter("procfleet_relay_recovery_seconds"),
	}
	for _, r := range []string{reasonMethod, reasonUnauthorized, reasonNotReady, reasonQuery, reasonEncoding,
		reasonTooLarge, reasonBadGzip, reasonBadZstd, reasonBadLine, reasonBadSnappy, reasonBadSeries, reasonRead, reasonTimeout, reasonBusy, reasonFull, reasonDisk} {
		m.rejected[r] = set.NewCounter(`procfleet_relay_rejected_total{reason="` + r + `"}`)
	}
	for i := range m.write {
		v := `{version="` + strconv.Itoa(i+1) + `"}`
		m.write[i] = writeMetrics{
			requests:   set.NewCounter("procfleet_relay_remote_write_requests_total" + v),
			samples:    set.NewCounter("procfleet_relay_remote_write_samples_total" + v),
			histograms: set.NewCounter("procfleet_relay_remote_write_histograms_dropped_total" + v),
			exemplars:  set.NewCounter("procfleet_relay_remote_write_exemplars_dropped_total" + v),
		}
	}
	return m
}

// writeMetrics count the remote write requests of one version that were
// stored, their samples, and the histogram samples and exemplars left out.
type writeMetrics struct {
	requests, samples, histograms, exemplars *metrics.Counter
}
