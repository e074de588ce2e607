package config

import (
	"fmt"
	"net/url"
	"time"
)

// Ship configures the shipper: where batches go and how they get there.
type Ship struct {
	// Upstreams are the import URLs batches are sent to, such as
	// http://127.0.0.1:8428/api/v1/import/prometheus (VictoriaMetrics
	// single-node), .../insert/0/prometheus/api/v1/import/prometheus
	// (cluster), a vmagent or a procfleet relay. Sends go round robin over
	// the healthy ones. Required for a standalone agent.
	Upstreams []string `yaml:"upstreams"`
	// Strategy chooses among healthy upstreams: round_robin spreads batches
	// over all of them; ordered sends to the first healthy one in list
	// order and fails over along it (a cluster's assignment is ordered,
	// closest first). Default round_robin.
	Strategy string `yaml:"strategy"`
	// Timeouts bound each phase of a request.
	Timeouts ShipTimeouts `yaml:"timeouts"`
	// Retry shapes the backoff between attempts of one batch.
	Retry ShipRetry `yaml:"retry"`
	// ProbeInterval is how often an unhealthy endpoint is probed to see
	// whether it is back. Default 5s.
	ProbeInterval Duration `yaml:"probe_interval"`
	// FailuresToUnhealthy is how many failed sends in a row mark an
	// endpoint unhealthy. Default 2.
	FailuresToUnhealthy int `yaml:"failures_to_unhealthy"`
	// QueueBatches bounds the compressed batches held in memory waiting to
	// be sent; when full, the oldest goes to the spool, or without one is
	// dropped and counted. Default 256.
	QueueBatches int `yaml:"queue_batches"`
	// QueueBytes bounds the bodies of those batches, as QueueBatches
	// does their number: a scraper's batches are target_bytes each, and
	// 256 of them would hold 128 MiB while an upstream is slow. Default
	// 32MiB; 0 for no bound but QueueBatches.
	QueueBytes ByteSize `yaml:"queue_bytes"`
	// DrainTimeout bounds how long a graceful stop keeps sending queued
	// batches. Default 10s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// RedeliverWindow is how long the batches an upstream acknowledged
	// are kept to be sent again should it become unreachable (connection
	// refused or reset, a timeout, no answer) within that time:
	// VictoriaMetrics acknowledges a body once it is parsed into memory
	// and writes it to disk seconds later, so a crash loses what it took
	// last. Such batches go to the next upstream before new data. An
	// upstream that answers, even with an error, lost nothing. 0 turns
	// redelivery off. 0 to 10m; default 10s.
	RedeliverWindow Duration `yaml:"redeliver_window"`
	// RedeliverMaxBytes bounds the body bytes kept for RedeliverWindow;
	// past it the oldest are let go early, counted. The agent keeps them
	// in memory, the relay (and an agent's spooled batches) in the
	// write-ahead log or spool. 64KiB to 16GiB; default 8MiB for the
	// agent, 64MiB for the relay.
	RedeliverMaxBytes ByteSize `yaml:"redeliver_max_bytes"`
	// StreamFor is how long one import request to a VictoriaMetrics
	// upstream (one that answers with its X-Server-Hostname header:
	// single-node, vminsert, vmagent, vmauth) is kept open, its gzip body
	// streamed a batch at a time with a sync flush after each, so that the
	// compression context carries over from one batch to the next and one
	// request's headers serve them all. VictoriaMetrics parses each batch
	// as it arrives. Batches are acknowledged when the request ends with
	// 2xx; a request that fails has every batch it carried sent again on
	// its own (or spooled). Other upstreams (a procfleet relay, which
	// reads a body whole before storing it) get one request per batch.
	// 0 turns streaming off. 0 (off) or 2s to 2m; default 30s.
	StreamFor Duration `yaml:"stream_for"`
	// StreamEncoding is the encoding of streamed requests: zstd, whose
	// window (512 KiB) holds several seconds of batches, so that each is
	// compressed against the ones before it, or gzip, whose 32 KiB window
	// holds less than one. VictoriaMetrics takes both. Default zstd.
	StreamEncoding string `yaml:"stream_encoding"`
	// Auth authenticates requests to the upstreams that Credentials does
	// not name. Host-local: never taken from the cluster config. Default
	// none.
	Auth ShipAuth `yaml:"auth"`
	// TLS configures https upstreams that Credentials does not name.
	// Host-local, as Auth. Default: system roots, verification on.
	TLS ShipTLS `yaml:"tls"`
	// Credentials gives, by upstream URL, the credential an upstream is sent
	// with instead of Auth and TLS. Not a key of any file: a cluster
	// member fills it from the credential names of the cluster config,
	// resolved against the host's own credentials (see Cluster.AgentConfig).
	Credentials map[string]UpstreamCredential `yaml:"-"`
	// Protocols gives, by upstream URL as in Upstreams, the protocol the
	// upstream is sent in: {protocol: remote_write, remote_write_version:
	// 2}, say. An upstream not named takes VictoriaMetrics' import. A
	// cluster member fills it from the cluster's upstreams. Default none.
	Protocols map[string]UpstreamProtocol `yaml:"protocols,omitempty"`
}

// Encodings of Ship.StreamEncoding.
const (
	StreamZstd = "zstd"
	StreamGzip = "gzip"
)

// Upstream choice strategies of Ship.Strategy.
const (
	StrategyRoundRobin = "round_robin"
	StrategyOrdered    = "ordered"
)

// ShipTimeouts bound the phases of one request.
type ShipTimeouts struct {
	// Connect bounds TCP connect and TLS handshake. Default 5s.
	Connect Duration `yaml:"connect"`
	// Send bounds writing the request body. Default 30s.
	Send Duration `yaml:"send"`
	// Response bounds waiting for the response headers after the body was
	// sent. Default 10s for agents (a one-second batch is answered in
	// milliseconds; a stalled upstream must give way to the next one, and
	// to the spool, well within a minute), 30s for relays (their requests
	// merge up to import.batch_bytes).
	Response Duration `yaml:"response"`
}

// ShipRetry shapes exponential backoff with full jitter between attempts.
type ShipRetry struct {
	// MinBackoff is the first backoff. Default 250ms.
	MinBackoff Duration `yaml:"min_backoff"`
	// MaxBackoff caps the backoff, and a Retry-After longer than it.
	// Default 30s.
	MaxBackoff Duration `yaml:"max_backoff"`
}

// ShipAuth authenticates requests to upstreams. At most one of basic auth
// (Username with PasswordFile) and BearerTokenFile may be set.
type ShipAuth struct {
	// Username for basic auth. Default none.
	Username string `yaml:"username"`
	// PasswordFile holds the basic auth password (trailing newline
	// ignored). Re-read when it changes.
	PasswordFile string `yaml:"password_file"`
	// BearerTokenFile holds a bearer token (trailing newline ignored).
	// Re-read when it changes.
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// ShipTLS configures TLS for https upstreams.
type ShipTLS struct {
	// CAFile is a PEM bundle of roots to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate verification off. Default
	// false; an explicit opt-in for test setups only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// DefaultShip returns the shipper defaults.
func DefaultShip() Ship {
	return Ship{
		Strategy: StrategyRoundRobin,
		Timeouts: ShipTimeouts{
			Connect:  Duration(5 * time.Second),
			Send:     Duration(30 * time.Second),
			Response: Duration(10 * time.Second),
		},
		Retry: ShipRetry{
			MinBackoff: Duration(250 * time.Millisecond),
			MaxBackoff: Duration(30 * time.Second),
		},
		ProbeInterval:       Duration(5 * time.Second),
		FailuresToUnhealthy: 2,
		QueueBatches:        256,
		QueueBytes:          32 << 20,
		DrainTimeout:        Duration(10 * time.Second),
		RedeliverWindow:     Duration(10 * time.Second),
		RedeliverMaxBytes:   8 << 20,
		StreamFor:           Duration(30 * time.Second),
		StreamEncoding:      StreamZstd,
	}
}

// Validate checks s; key is the dotted path of s in its document, such as
// "ship", and prefixes every error.
func (s Ship) Validate(key string) error {
	for i, u := range s.Upstreams {
		if err := ValidateUpstreamURL(u); err != nil {
			return fmt.Errorf("%s.upstreams[%d]: %w", key, i, err)
		}
	}
	if s.Strategy != StrategyRoundRobin && s.Strategy != StrategyOrdered {
		return fmt.Errorf("%s.strategy: %q is not accepted; want %s or %s", key, s.Strategy, StrategyRoundRobin, StrategyOrdered)
	}
	positive := []struct {
		name string
		d    Duration
	}{
		{"timeouts.connect", s.Timeouts.Connect},
		{"timeouts.send", s.Timeouts.Send},
		{"timeouts.response", s.Timeouts.Response},
		{"retry.min_backoff", s.Retry.MinBackoff},
		{"retry.max_backoff", s.Retry.MaxBackoff},
		{"probe_interval", s.ProbeInterval},
		{"drain_timeout", s.DrainTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("%s.%s: %s is not accepted; want a positive duration such as 1s", key, p.name, p.d)
		}
	}
	if s.Retry.MaxBackoff < s.Retry.MinBackoff {
		return fmt.Errorf("%s.retry.max_backoff: %s is below retry.min_backoff %s", key, s.Retry.MaxBackoff, s.Retry.MinBackoff)
	}
	if s.FailuresToUnhealthy < 1 {
		return fmt.Errorf("%s.failures_to_unhealthy: %d is not accepted; want 1 or more", key, s.FailuresToUnhealthy)
	}
	if s.QueueBatches < 1 {
		return fmt.Errorf("%s.queue_batches: %d is not accepted; want 1 or more", key, s.QueueBatches)
	}
	if s.QueueBytes != 0 && s.QueueBytes < 64<<10 {
		return fmt.Errorf("%s.queue_bytes: %s is not accepted; want 0 (no bound) or 64KiB or more", key, FormatBytes(int64(s.QueueBytes)))
	}
	if s.RedeliverWindow < 0 || s.RedeliverWindow > Duration(10*time.Minute) {
		return fmt.Errorf("%s.redeliver_window: %s is not accepted; want 0 (off) to 10m, such as 10s", key, s.RedeliverWindow)
	}
	if s.RedeliverMaxBytes < 64<<10 || s.RedeliverMaxBytes > 16<<30 {
		return fmt.Errorf("%s.redeliver_max_bytes: %s is not accepted; want 64KiB to 16GiB, such as 8MiB",
			key, FormatBytes(int64(s.RedeliverMaxBytes)))
	}
	if s.StreamFor != 0 && (s.StreamFor < Duration(2*time.Second) || s.StreamFor > Duration(2*time.Minute)) {
		return fmt.Errorf("%s.stream_for: %s is not accepted; want 0 (off) or 2s to 2m, such as 30s", key, s.StreamFor)
	}
	if s.StreamEncoding != StreamZstd && s.StreamEncoding != StreamGzip {
		return fmt.Errorf("%s.stream_encoding: %q is not accepted; want %s or %s", key, s.StreamEncoding, StreamZstd, StreamGzip)
	}
	if err := validateAuthTLS(key+".auth", key+".tls", s.Auth, s.TLS); err != nil {
		return err
	}
	if err := validateProtocols(key, s.Protocols); err != nil {
		return err
	}
	return validateUpstreamCredentials(key, s.Credentials)
}

// Protocol returns the protocol of the upstream u.
func (s Ship) Protocol(u string) UpstreamProtocol {
	return s.Protocols[u]
}

// ValidateUpstreamURL checks that u is an absolute http or https URL.
func ValidateUpstreamURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", u, err)
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%q is not accepted; want an http:// or https:// URL with a host, such as http://127.0.0.1:8428/api/v1/import/prometheus", u)
	}
	return nil
}

// Limit configures the bandwidth limiter shared by all sends.
type Limit struct {
	// BytesPerSecond is the sustained send rate of compressed bytes.
	// 0 means unlimited. Default 0 (a cluster assigns a budget).
	BytesPerSecond ByteRate `yaml:"bytes_per_second"`
	// Burst caps the credit saved up while idle, in bytes. 0 means one
	// second of BytesPerSecond. Default 0.
	Burst ByteSize `yaml:"burst"`
}

// Validate checks l.
func (l Limit) Validate(key string) error {
	if l.BytesPerSecond < 0 {
		return fmt.Errorf("%s.bytes_per_second: %d is not accepted; want 0 (unlimited) or a positive rate", key, l.BytesPerSecond)
	}
	if l.Burst < 0 {
		return fmt.Errorf("%s.burst: %d is not accepted; want 0 or a positive size", key, l.Burst)
	}
	return nil
}
