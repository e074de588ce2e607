package targets

import "time"

// Phase returns the scrape phase of a target: an offset in [0, interval)
// derived from a hash of targetID alone, so that every member (and every
// procfleet version: TestPhasePinned) gives a target the same phase. It
// is a whole number of milliseconds when interval is 1 ms or more, since
// samples carry millisecond timestamps. It returns 0 for an interval of 0
// or less. It is a pure function.
//
// A target with interval I and phase P is scraped at the Unix times t
// with t mod I = P (see NextScrape), and its samples are stamped with
// that time, not with the moment the response came. Two members scraping
// it during a handover thus produce samples with equal timestamps, which
// VictoriaMetrics' -dedup.minScrapeInterval collapses; and targets spread
// evenly over the interval instead of all being scraped at its start.
func Phase(targetID string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := sumIn(domainPhase, targetID)
	if ms := uint64(interval / time.Millisecond); ms > 0 {
		return time.Duration(h%ms) * time.Millisecond
	}
	return time.Duration(h % uint64(interval))
}

// NextScrape returns the first scrape time of targetID strictly after
// after: the next Unix time t with t mod interval = Phase(targetID,
// interval). It returns after itself for an interval of 0 or less. It is
// a pure function.
func NextScrape(after time.Time, targetID string, interval time.Duration) time.Time {
	if interval <= 0 {
		return after
	}
	p := int64(Phase(targetID, interval))
	iv := int64(interval)
	ns := after.UnixNano()
	// The tick at or before ns, then one interval on. Go's % keeps the
	// sign of ns, so before 1970 the remainder is taken up.
	r := (ns - p) % iv
	if r < 0 {
		r += iv
	}
	return time.Unix(0, ns-r+iv)
}
