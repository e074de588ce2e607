// Package scrape is the member's scraper: it scrapes the Prometheus
// targets it is given (Manager.Apply), each on its own loop, and writes
// their samples, with the series Prometheus adds about every scrape (up,
// scrape_duration_seconds, ...), into the agent's pipeline as the
// generators do: pooled emit buffers handed to a Sink.
//
// Scraping follows Prometheus v3 (see prom/promtext for the parsing):
// HTTP(S) GET of the target's URL with Accept text/plain;version=0.0.4,
// Accept-Encoding gzip and X-Prometheus-Scrape-Timeout-Seconds, within the
// scrape_timeout; credentials from the host's own credentials; a body of
// body_size_limit bytes or more, inflated, fails the scrape; only status
// 200 is taken. A scrape that fails writes nothing but its report series,
// with up 0, and its error is kept for Manager.Targets.
//
// A target's scrapes happen at the wall-clock instants t with
// t mod interval == Phase(key), and are stamped with t (in milliseconds),
// not with the moment the answer came: every member scrapes a target at
// the same instants, so that the overlap of a handover lands on the same
// timestamps. Each target runs on a goroutine of its own: one that hangs
// until its timeout, answers 5xx or sends a gigabyte delays no other, and
// what it costs in memory is bounded by the body limit.
package scrape

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
)

// Config holds the host's bounds on scrapes, for jobs that set none.
type Config struct {
	// MaxBodyBytes bounds the (inflated) body of a scrape whose job sets
	// no body_size_limit: a body of this size or more fails the scrape,
	// as body_size_limit would. Default 64 MiB. Prometheus has no bound
	// by default; without one a single target could take the member's
	// memory.
	MaxBodyBytes int64
	// MaxSamples fails a scrape whose job sets no sample_limit when it
	// holds more samples after metric relabeling, as sample_limit would.
	// Default 1,000,000: what a scrape holds in memory until it is known
	// to succeed is about 100 bytes a sample.
	MaxSamples int
	// MaxPendingBytes bounds the scrape output held between requests and
	// their delivery into the pipeline (see budget): when the pipeline
	// falls behind, scrapes wait before they send their requests rather
	// than each hold a parsed output. A target larger than the bound is
	// still scraped, alone. Default (and when 0) 8 MiB.
	MaxPendingBytes int64
}

// DefaultConfig returns the defaults of Config.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 64 << 20, MaxSamples: 1_000_000, MaxPendingBytes: 8 << 20}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.MaxBodyBytes <= 0 || c.MaxSamples <= 0 || c.MaxPendingBytes < 0 {
		return fmt.Errorf("scrape: max body bytes %d, max samples %d and max pending bytes %d; want positive (max pending bytes 0 for the default)", c.MaxBodyBytes, c.MaxSamples, c.MaxPendingBytes)
	}
	return nil
}

// Deps are the Manager's collaborators.
type Deps struct {
	// Pool gives the buffers a scrape's lines are written into, and Sink
	// takes them, as a generator's; when Sink is an emit.Flusher it is
	// told after each scrape that the scrape's lines may leave. Required.
	Pool *emit.Pool
	Sink emit.Sink
	// Credentials are the host's credentials, which jobs name in
	// basic_auth, authorization and tls_config; CredentialSource says
	// where they are defined, for messages ("credentials: in
	// /etc/procfleet/agent.yaml").
	Credentials      map[string]config.Credential
	CredentialSource string
	// Logger receives the scraper's log lines, with component=scrape
	// added. Nil discards them.
	Logger *slog.Logger
	// Metrics receives procfleet_scrape_*; nil uses a private set.
	Metrics *metrics.Set
	// Transport replaces the HTTP transports built for the jobs (their
	// TLS settings then do not apply). For tests.
	Transport http.RoundTripper
	// Now replaces time.Now for the schedule. For tests.
	Now func() time.Time
}

func (d *Deps) check() error {
	if d.Pool == nil || d.Sink == nil {
		return errors.New("scrape: Deps.Pool and Deps.Sink are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", "scrape")
	if d.Metrics == nil {
		d.Metrics = metrics.NewSet()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return nil
}
