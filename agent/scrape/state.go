package scrape

import (
	"time"

	"github.com/procfleet/procfleet/prom/labels"
)

// Health of a target, as Prometheus names it.
const (
	HealthUnknown = "unknown" // not scraped yet
	HealthUp      = "up"      // the last scrape succeeded
	HealthDown    = "down"    // the last scrape failed
)

// TargetState is what a member knows of a target it scrapes, for
// `procfleet targets`.
type TargetState struct {
	// Job and Target (host:port) name the target; URL is what is scraped.
	Job, Target, URL string
	// Key is the target's Target.Key.
	Key string
	// Labels are the target's labels, which its series carry.
	Labels labels.Labels
	// Health is HealthUp, HealthDown or HealthUnknown.
	Health string
	// LastScrape is the instant of the last scrape (its samples' stamp),
	// zero before the first; Duration is how long it took.
	LastScrape time.Time
	Duration   time.Duration
	// Samples and SamplesPostRelabel are the last scrape's
	// scrape_samples_scraped and scrape_samples_post_metric_relabeling.
	Samples, SamplesPostRelabel int
	// LastError is why the last scrape failed, "" when it did not.
	LastError string
	// LastWarning says what the last scrape, which succeeded, dropped as
	// Prometheus drops it: duplicate samples, samples stamped out of
	// bounds. "" when nothing.
	LastWarning string
}
