package promtext

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"time"

	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// maxAhead is how far after the scrape a sample's timestamp may be:
// Prometheus' head refuses samples further ahead.
const maxAhead = 10 * time.Minute

// minTimestamp is the first timestamp written: VictoriaMetrics reads a
// smaller one as seconds, and Prometheus' head would refuse it as too old.
const minTimestamp = 1 << 31

// ErrSampleLimit is returned, wrapped, when a body holds more samples than
// the sample_limit after metric relabeling.
var ErrSampleLimit = errors.New("sample limit exceeded")

// ErrDuplicateSeries is returned, wrapped, when FailOnDuplicates is set and
// a body gives a series twice.
var ErrDuplicateSeries = errors.New("duplicate series")

// ReadError wraps an error of the body's reader (a timeout, a connection
// cut, a body over its limit), as opposed to a fault of the text. After
// one, Prometheus reports a scrape with no sample; ScrapeStats count none.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// ScrapeOptions are one target's settings.
type ScrapeOptions struct {
	// Target holds the target's public labels (job, instance and the
	// labels of its target group; no "__" names), sorted, as
	// labels.FromStrings makes them.
	Target labels.Labels
	// HonorLabels and HonorTimestamps are the job's honor_labels and
	// honor_timestamps.
	HonorLabels, HonorTimestamps bool
	// Rules are the job's compiled metric_relabel_configs; nil for none.
	Rules *relabel.Rules
	// SampleLimit and LabelLimit are the job's sample_limit and
	// label_limit; 0 for no limit.
	SampleLimit, LabelLimit int
	// FailOnDuplicates fails a scrape whose body gives a series twice
	// without timestamps (ErrDuplicateSeries): Prometheus keeps the first
	// sample and drops the others; procfleet's scraper reports the target
	// as down instead, so that a broken exporter is seen. Default false.
	FailOnDuplicates bool
	// Limits bound the lines written: MaxLineBytes, MaxLabels,
	// MaxLabelNameBytes and MaxLabelValueBytes apply (MaxBytes does not:
	// the caller bounds the body). The zero value means DefaultLimits.
	Limits Limits
}

// ScrapeStats describe one Parse.
type ScrapeStats struct {
	// Scraped counts the samples of the body
	// (scrape_samples_scraped).
	Scraped int
	// PostRelabel counts those metric relabeling kept, duplicates
	// included (scrape_samples_post_metric_relabeling).
	PostRelabel int
	// SeriesAdded counts the series written that were not known from
	// the last scrapes (scrape_series_added): those of the last
	// successful one, and those written before a later one failed, as
	// Prometheus' scrape cache holds them.
	SeriesAdded int
	// Written counts the lines written.
	Written int
	// Duplicates counts the samples dropped as duplicates, and
	// FirstDuplicateLine is the line of the first (0 when none).
	Duplicates, FirstDuplicateLine int
	// OutOfBounds counts the samples dropped for their timestamp.
	OutOfBounds int
	// Bytes counts the body's bytes read.
	Bytes int64
}

// ScrapeParser parses the scrapes of one target. Its state between
// scrapes is the set of series of the last successful one (8 to 16 bytes a
// series); buffers are pooled across parsers while a Parse runs. A
// ScrapeParser is not safe for concurrent use.
type ScrapeParser struct {
	opt      ScrapeOptions
	lim      Limits
	tgt      []targetLabel // opt.Target, escaped
	tgtBits  uint64        // nameBit of each target label's name
	seed     maphash.Seed
	prev     seriesSet              // series known from the last scrapes, as Prometheus' scrape cache holds them
	okSeries int                    // series of the last successful Parse
	built    map[uint64]builtSeries // label sets built, by hash of the series text
	iter     uint64                 // Parses begun
}

// targetLabel is a target label, with its text as spliced into a line.
type targetLabel struct {
	name string
	text string // name="escaped value"
}

// NewScrapeParser checks opt and returns a parser for its target.
func NewScrapeParser(opt ScrapeOptions) (*ScrapeParser, error) {
	lim := opt.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits()
	}
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	if opt.SampleLimit < 0 || opt.LabelLimit < 0 {
		return nil, fmt.Errorf("promtext: sample limit %d, label limit %d; want 0 (none) or more", opt.SampleLimit, opt.LabelLimit)
	}
	p := &ScrapeParser{opt: opt, lim: lim, seed: maphash.MakeSeed()}
	if opt.Rules != nil && opt.Rules.Len() == 0 {
		p.opt.Rules = nil
	}
	for i, l := range opt.Target {
		switch {
		case i > 0 && opt.Target[i-1].Name >= l.Name:
			return nil, fmt.Errorf("promtext: target labels %s are not sorted with unique names", opt.Target)
		case !labels.IsValidName(l.Name) || l.Name[0] == '_' && len(l.Name) > 1 && l.Name[1] == '_':
			return nil, fmt.Errorf("promtext: target label %q is not a public label name", l.Name)
		case l.Value == "":
			return nil, fmt.Errorf("promtext: target label %s has an empty value", l.Name)
		case len(l.Name) > lim.MaxLabelNameBytes || len(l.Value) > lim.MaxLabelValueBytes:
			return nil, fmt.Errorf("promtext: target label %s is longer than VictoriaMetrics takes", l.Name)
		}
		text := string(appendLabel(nil, l.Name, l.Value))
		p.tgt = append(p.tgt, targetLabel{name: l.Name, text: text})
		p.tgtBits |= nameBit([]byte(l.Name))
	}
	if len(p.tgt) >= lim.MaxLabels {
		return nil, fmt.Errorf("promtext: %d target labels leave no room for a series' own (limit %d)", len(p.tgt), lim.MaxLabels)
	}
	return p, nil
}

var scrapeStatePool = sync.Pool{New: func() any { return newScrapeState() }}

// Parse reads the body r to its end and appends a line to dst for every
// sample written, stamped with stamp (milliseconds since the epoch) where
// the sample has no timestamp of its own or honor_timestamps is false.
// It returns the extended dst and nil, or dst as it was given and the
// first error: a *LineError for a fault of the text, an error that wraps
// ErrSampleLimit, one for label_limit, or a *ReadError. Stats are those
// Prometheus reports for the scrape (none after a *ReadError).
//
// Parse reads r in blocks and blocks in r.Read only. It keeps nothing of
// the body; on success the series written become the reference of the
// next Parse's SeriesAdded.
func (p *ScrapeParser) Parse(r io.Reader, stamp int64, dst []byte) ([]byte, ScrapeStats, error) {
	s := scrapeStatePool.Get().(*scrapeState)
	defer s.release()
	p.iter++
	s.begin(p, stamp, len(dst))
	out, err := s.run(r, dst)
	st := s.st
	switch {
	case err != nil && isReadError(err):
		// Prometheus reads the whole body before it parses: nothing of
		// this one was counted or cached.
		return dst, ScrapeStats{Bytes: st.Bytes}, err
	case err == nil && st.PostRelabel-st.Duplicates > p.opt.SampleLimit && p.opt.SampleLimit > 0:
		err = fmt.Errorf("%w (%d samples after metric relabeling, limit %d)", ErrSampleLimit, st.PostRelabel-st.Duplicates, p.opt.SampleLimit)
	case err == nil && p.opt.FailOnDuplicates && st.Duplicates > 0:
		err = fmt.Errorf("%w: line %d gives a series already given, without a timestamp (%d such samples in the body)", ErrDuplicateSeries, st.FirstDuplicateLine, st.Duplicates)
	}
	if err != nil {
		p.keepFailed(&s.cur)
		p.sweepBuilt(false)
		return dst, st, err
	}
	p.prev.copyFrom(&s.cur)
	p.okSeries = s.cur.n
	p.sweepBuilt(true)
	return out, st, nil
}

// isReadError reports whether err is or wraps a *ReadError.
func isReadError(err error) bool {
	var re *ReadError
	return errors.As(err, &re)
}

// keepFailed adds the series a failed scrape appended to the series known,
// as Prometheus' scrape cache keeps them, unless they grew past twice the
// last successful scrape's and 1000, where Prometheus flushes its cache.
func (p *ScrapeParser) keepFailed(cur *seriesSet) {
	for _, h := range cur.slots {
		if h != 0 {
			p.prev.insert(h)
		}
	}
	if p.prev.n > 2*p.okSeries+1000 {
		p.prev.copyFrom(cur)
	}
}

// ReportSeries are the values of the series a scrape adds about itself.
type ReportSeries struct {
	Up       bool
	Duration time.Duration
	Stats    ScrapeStats
}

// AppendReport appends to dst the series Prometheus adds for every
// scrape, with the target's labels, stamped with stamp: up,
// scrape_duration_seconds, scrape_samples_scraped,
// scrape_samples_post_metric_relabeling and scrape_series_added.
// Metric relabeling does not apply to them.
func (p *ScrapeParser) AppendReport(dst []byte, stamp int64, r ReportSeries) []byte {
	up := 0.0
	if r.Up {
		up = 1
	}
	for _, s := range [...]struct {
		name string
		v    float64
	}{
		{"up", up},
		{"scrape_duration_seconds", r.Duration.Seconds()},
		{"scrape_samples_scraped", float64(r.Stats.Scraped)},
		{"scrape_samples_post_metric_relabeling", float64(r.Stats.PostRelabel)},
		{"scrape_series_added", float64(r.Stats.SeriesAdded)},
	} {
		dst = append(dst, s.name...)
		dst = p.appendTarget(dst)
		dst = append(dst, ' ')
		dst = appendFloat(dst, s.v)
		dst = append(dst, ' ')
		dst = appendInt(dst, stamp)
		dst = append(dst, '\n')
	}
	return dst
}

// appendTarget appends the target's labels in braces.
func (p *ScrapeParser) appendTarget(dst []byte) []byte {
	for i, t := range p.tgt {
		if i == 0 {
			dst = append(dst, '{')
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, t.text...)
	}
	if len(p.tgt) > 0 {
		dst = append(dst, '}')
	}
	return dst
}
