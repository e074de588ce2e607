package main

import "time"

// report is the JSON on stdout.
type report struct {
	Targets         int    `json:"targets"`
	SeriesPerTarget int    `json:"series_per_target"`
	Interval        string `json:"interval"`
	Warmup          string `json:"warmup"`
	Window          string `json:"window"`
	// ProcfleetAgent, ProcfleetGOGC and ProcfleetProtocol are procfleet's
	// settings: -procfleet-agent, -procfleet-gogc, -procfleet-protocol.
	ProcfleetAgent    string       `json:"procfleet_agent"`
	ProcfleetGOGC     string       `json:"procfleet_gogc"`
	ProcfleetProtocol string       `json:"procfleet_protocol"`
	Sides             []sideReport `json:"sides"` // procfleet, then vmagent
	// Ratios are procfleet / vmagent: below 1 procfleet uses less.
	Ratios ratios `json:"ratios_procfleet_over_vmagent"`
}

type sideReport struct {
	Name string `json:"name"`
	// CPUSeconds is utime+stime over the window.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Scrapes the targets answered to this side within the window, and
	// ScrapedSamples their series (scrapes × series per target).
	Scrapes        int64 `json:"scrapes"`
	ScrapedSamples int64 `json:"scraped_samples"`
	// ExpectedScrapes is targets × window / interval.
	ExpectedScrapes float64 `json:"expected_scrapes"`
	// RowsInserted is what its VictoriaMetrics inserted within the
	// window (the scraped series plus up, scrape_* per scrape).
	RowsInserted float64 `json:"rows_inserted"`
	// WireBytes is what the scraper sent to its VictoriaMetrics (TCP
	// payload, HTTP headers included, compressed bodies as sent).
	WireBytes int64 `json:"wire_bytes"`
	// CPUMicrosPerSample is CPU microseconds per scraped sample.
	CPUMicrosPerSample float64 `json:"cpu_us_per_scraped_sample"`
	// WireBytesPerSample is wire bytes per row inserted.
	WireBytesPerSample float64 `json:"wire_bytes_per_sample"`
	// DeliveredRatio is RowsInserted over what was scraped in the window
	// (series plus the 5 added per scrape): about 1 in a steady state,
	// above 1 while a backlog from before the window drains.
	DeliveredRatio float64 `json:"delivered_over_scraped"`
	RSSPeakBytes   int64   `json:"rss_peak_bytes"` // VmRSS, every 250 ms within the window
	HWMBytes       int64   `json:"vm_hwm_bytes"`   // VmHWM at the end: the peak since start
}

type ratios struct {
	CPUPerSample  float64 `json:"cpu_per_scraped_sample"`
	RSSPeak       float64 `json:"rss_peak"`
	HWM           float64 `json:"vm_hwm"`
	WirePerSample float64 `json:"wire_bytes_per_sample"`
}

func newSideReport(name string, a, b snap, peak, hwm int64, o options, window time.Duration) sideReport {
	r := sideReport{Name: name, CPUSeconds: b.cpu - a.cpu, Scrapes: b.scrapes - a.scrapes,
		RowsInserted: b.rows - a.rows, WireBytes: b.wire - a.wire, RSSPeakBytes: peak, HWMBytes: hwm,
		ExpectedScrapes: float64(o.targets) * window.Seconds() / o.interval.Seconds()}
	r.ScrapedSamples = r.Scrapes * int64(o.series)
	if r.ScrapedSamples > 0 {
		r.CPUMicrosPerSample = r.CPUSeconds * 1e6 / float64(r.ScrapedSamples)
	}
	if n := r.ScrapedSamples + 5*r.Scrapes; n > 0 {
		r.DeliveredRatio = r.RowsInserted / float64(n)
	}
	if r.RowsInserted > 0 {
		r.WireBytesPerSample = float64(r.WireBytes) / r.RowsInserted
	}
	return r
}

func (r *report) ratios() {
	p, v := r.Sides[0], r.Sides[1]
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	r.Ratios = ratios{
		CPUPerSample:  div(p.CPUMicrosPerSample, v.CPUMicrosPerSample),
		RSSPeak:       div(float64(p.RSSPeakBytes), float64(v.RSSPeakBytes)),
		HWM:           div(float64(p.HWMBytes), float64(v.HWMBytes)),
		WirePerSample: div(p.WireBytesPerSample, v.WireBytesPerSample),
	}
}
