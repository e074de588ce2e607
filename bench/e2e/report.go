package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is the JSON object the program prints.
type Report struct {
	DurationS   float64    `json:"duration_s"` // measured window, as it was
	WarmupS     float64    `json:"warmup_s"`   // from the start to the window
	WindowStart time.Time  `json:"window_start"`
	WindowEnd   time.Time  `json:"window_end"`
	Machine     Machine    `json:"machine"`
	Versions    Versions   `json:"versions"`
	A           SideReport `json:"a"`
	B           SideReport `json:"b"`
	// Floor is VictoriaMetrics' own share of freshness in this run (see
	// floor): what a sample written straight into it waits to be queryable.
	Floor FloorReport `json:"victoriametrics_floor"`
	// Ratio is A/B for each numeric field of SideReport (absent where B is 0).
	Ratio         map[string]float64 `json:"ratio"`
	Targets       map[string]Target  `json:"targets"`
	AllTargetsMet bool               `json:"all_targets_met"`
	Profile       string             `json:"profile,omitempty"`
	// FreshnessMode says whether VictoriaMetrics' search buffer is in the
	// freshness figures ("queryable") or taken out ("ingested").
	FreshnessMode string `json:"freshness_mode"`
	// Redeliver is what side A's redelivery window costs (-window-cost).
	Redeliver *RedeliverReport `json:"redeliver_window,omitempty"`
	// ProcessScans is what side A's process generator left unread.
	ProcessScans *ScanReport `json:"process_scans,omitempty"`
	Notes        []string    `json:"notes"`
}

// SideReport is one side's figures over the window.
type SideReport struct {
	Setup     string       `json:"setup"`
	Instance  string       `json:"instance"`
	Processes []ProcReport `json:"processes"`

	CPUSeconds float64 `json:"cpu_seconds"`
	RSSBytes   int64   `json:"rss_bytes"`
	VmHWMBytes int64   `json:"vm_hwm_bytes"`
	Series     int64   `json:"series"`
	SeriesNode int64   `json:"series_node"`
	// SeriesByPrefix splits Series by metric name up to its first '_'
	// (node, proc, procfleet, go, process, scrape, up, ...).
	SeriesByPrefix           map[string]int64 `json:"series_by_prefix"`
	Samples                  int64            `json:"samples"`
	WireBytes                int64            `json:"wire_bytes"`
	WireBytesClientToServer  int64            `json:"wire_bytes_client_to_server"`
	WireBytesServerToClient  int64            `json:"wire_bytes_server_to_client"`
	FreshnessP50MS           float64          `json:"freshness_p50_ms"`
	FreshnessP99MS           float64          `json:"freshness_p99_ms"`
	FreshnessMaxMS           float64          `json:"freshness_max_ms"`
	FreshnessSamples         int              `json:"freshness_samples"`
	FreshnessSeries          int              `json:"freshness_series"`
	FreshnessPollErrors      int              `json:"freshness_poll_errors"`
	CPUUsPerSeriesSecond     float64          `json:"cpu_us_per_series_second"`
	WireBytesPerSeriesSecond float64          `json:"wire_bytes_per_series_second"`
	SamplesPerSeriesSecond   float64          `json:"samples_per_series_second"`
	VictoriaMetricsCPUSecs   float64          `json:"victoriametrics_cpu_seconds"`
	// Per delivered sample (rows VictoriaMetrics inserted in the window).
	WireBytesPerSample     float64 `json:"wire_bytes_per_sample"`
	CPUUsPerSample         float64 `json:"cpu_us_per_sample"`
	Requests               int64   `json:"requests"`
	SamplesPerRequest      float64 `json:"samples_per_request"`
	BodyBytes              int64   `json:"body_bytes"`
	OverheadBytes          int64   `json:"overhead_bytes"`
	BodyBytesPerSample     float64 `json:"body_bytes_per_sample"`
	OverheadBytesPerSample float64 `json:"overhead_bytes_per_sample"`
}

// FloorReport is the freshness of samples imported straight into a third
// VictoriaMetrics, no agent in between.
type FloorReport struct {
	Setup            string  `json:"setup"`
	FreshnessP50MS   float64 `json:"freshness_p50_ms"`
	FreshnessP99MS   float64 `json:"freshness_p99_ms"`
	FreshnessMaxMS   float64 `json:"freshness_max_ms"`
	FreshnessSamples int     `json:"freshness_samples"`
	PollErrors       int     `json:"freshness_poll_errors"`
}

// ProcReport is one measured process.
type ProcReport struct {
	Name         string  `json:"name"`
	PID          int     `json:"pid"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	RSSPeakBytes int64   `json:"rss_peak_bytes"`
	VmHWMBytes   int64   `json:"vm_hwm_bytes"`
}

// Target is one of issue 5's targets for side A.
type Target struct {
	Want  string  `json:"want"`
	A     float64 `json:"a"`
	Limit float64 `json:"limit"`
	// AOverLimit is A/Limit: at most 1 (under 1 for rss_bytes) when met.
	AOverLimit float64 `json:"a_over_limit"`
	Met        bool    `json:"met"`
	// FloorP99MS, for freshness_p99_ms only, is VictoriaMetrics' own p99
	// in the same run (Report.Floor): a limit below it cannot be met by
	// any sender.
	FloorP99MS float64 `json:"victoriametrics_floor_p99_ms,omitempty"`
}

const rssLimit = 40 << 20

const redeliverNote = "redeliver_window: held_* are side A's procfleet_ship_redeliver_window_bytes/_batches (compressed bodies kept to be sent again should an upstream crash) as the agent pushed them to side A's VictoriaMetrics (its self-metrics, one sample each 10 s; the harness does not read the agent's /metrics for them); off_* are a second agent, same configuration but ship.redeliver_window: 0, pushing to a sink in the harness, over the same window; *_delta are side A's agent less that one (the two differ by noise of a few percent as well)"

var notes = []string{
	"cpu_seconds: utime+stime from /proc/PID/stat of the agent processes (A: procfleet; B: node_exporter + vmagent) between window start and end, divided by clk_tck",
	"rss_bytes: peak over the window of the sum of the agent processes' VmRSS, sampled every 250ms; vm_hwm_bytes: sum of their VmHWM (peak since process start, warm-up included) at the end",
	"series: count(count_over_time({__name__!=\"\"}[window])) evaluated at window end: every series with a sample in the window, the agents' own and vmagent's scrape series (up, scrape_*) included; series_node: the same for node_* names only",
	"samples: delta of vm_rows_inserted_total (summed over types) of the side's VictoriaMetrics between window start and end",
	"wire_bytes: wire_bytes_client_to_server + wire_bytes_server_to_client, counted by a TCP proxy in front of the side's VictoriaMetrics (HTTP headers, responses and health probes included; no TLS)",
	"freshness: for each new sample (timestamp in the window) of the probed series, the time the /api/v1/export poll (every 100ms) that first returned it was sent minus its timestamp; VictoriaMetrics runs with -search.latencyOffset=0s",
	"victoriametrics_floor: a third VictoriaMetrics (same version and flags) takes one sample per second of one series, imported straight by the harness with the time of sending as its timestamp, and is probed like the sides: VictoriaMetrics' own share of freshness, which no sender can go below",
	"per_series_second figures divide by series x duration_s; ratio is A/B; victoriametrics_cpu_seconds (not an agent cost) includes the freshness polls",
	"per_sample figures divide by samples (rows delivered into the side's VictoriaMetrics in the window): wire_bytes_per_sample, cpu_us_per_sample (cpu_seconds x 1e6 / samples)",
	"requests: delta of the side's VictoriaMetrics vm_http_requests_total for the write path (A /api/v1/import/prometheus, B /api/v1/write), counted when a request arrives (a streamed one once); body_bytes: request body bytes as the sender counts them (A procfleet_ship_bytes_total, B vmagent_remotewrite_bytes_sent_total); overhead_bytes: wire_bytes - body_bytes (request and response headers, chunk framing, answers, probes)",
}

// buildReport derives every figure from the raw window.
func buildReport(o options, m Machine, v Versions, w *window) *Report {
	r := &Report{
		DurationS:     w.end.Sub(w.start).Seconds(),
		WarmupS:       w.warmup.Seconds(),
		WindowStart:   w.start,
		WindowEnd:     w.end,
		Machine:       m,
		Versions:      v,
		Profile:       w.profile,
		FreshnessMode: "queryable: polls without force_flush; includes VictoriaMetrics' 2-4s search buffer",
		Notes:         notes,
	}
	if o.flush {
		r.FreshnessMode = "ingested: /internal/force_flush before every poll (-flush-before-poll); VictoriaMetrics' search buffer taken out"
	}
	r.A = sideReport(w.sides[0], r.DurationS, m.ClkTck)
	r.B = sideReport(w.sides[1], r.DurationS, m.ClkTck)
	f := w.floor
	r.Floor = FloorReport{Setup: "one sample per second imported straight into a third VictoriaMetrics",
		FreshnessP50MS: f.P50, FreshnessP99MS: f.P99, FreshnessMaxMS: f.Max, FreshnessSamples: f.N, PollErrors: f.PollErrors}
	r.Ratio = ratios(r.A, r.B)
	r.Targets = targets(r.A, r.B)
	if t, ok := r.Targets["freshness_p99_ms"]; ok {
		t.FloorP99MS = r.Floor.FreshnessP99MS
		r.Targets["freshness_p99_ms"] = t
	}
	if w.scans != nil {
		r.ProcessScans = w.scans
		r.Notes = append(slices.Clip(r.Notes), scanNote)
	}
	r.Redeliver = redeliverReport(w, r.A, m.ClkTck)
	if r.Redeliver != nil {
		r.Notes = append(slices.Clip(r.Notes), redeliverNote)
	}
	r.AllTargetsMet = true
	for _, t := range r.Targets {
		r.AllTargetsMet = r.AllTargetsMet && t.Met
	}
	return r
}

func sideReport(sw *sideWindow, dur float64, clkTck int64) SideReport {
	secs := func(pid int) float64 { return float64(sw.end.ticks[pid]-sw.start.ticks[pid]) / float64(clkTck) }
	r := SideReport{Setup: sw.s.setup, Instance: sw.s.instance, RSSBytes: sw.rssPeak}
	for _, p := range sw.s.agents {
		pr := ProcReport{Name: p.Name, PID: p.Pid(), CPUSeconds: secs(p.Pid()),
			RSSPeakBytes: sw.procPeak[p.Pid()], VmHWMBytes: sw.procHWM[p.Pid()]}
		r.Processes = append(r.Processes, pr)
		r.CPUSeconds += pr.CPUSeconds
		r.VmHWMBytes += pr.VmHWMBytes
	}
	r.VictoriaMetricsCPUSecs = secs(sw.s.vm.proc.Pid())
	r.Series, r.SeriesNode = int64(sw.series), int64(sw.seriesNode)
	r.SeriesByPrefix = map[string]int64{}
	for k, v := range sw.seriesByPrefix {
		r.SeriesByPrefix[k] = int64(v)
	}
	r.Samples = int64(sw.end.rows - sw.start.rows)
	r.WireBytesClientToServer = sw.end.up - sw.start.up
	r.WireBytesServerToClient = sw.end.down - sw.start.down
	r.WireBytes = r.WireBytesClientToServer + r.WireBytesServerToClient
	f := sw.fresh
	r.FreshnessP50MS, r.FreshnessP99MS, r.FreshnessMaxMS = f.P50, f.P99, f.Max
	r.FreshnessSamples, r.FreshnessSeries, r.FreshnessPollErrors = f.N, f.Series, f.PollErrors
	r.Requests = int64(sw.end.requests - sw.start.requests)
	r.BodyBytes = int64(sw.end.body - sw.start.body)
	r.OverheadBytes = r.WireBytes - r.BodyBytes
	if n := float64(r.Samples); n > 0 {
		r.WireBytesPerSample = float64(r.WireBytes) / n
		r.CPUUsPerSample = r.CPUSeconds * 1e6 / n
		r.BodyBytesPerSample = float64(r.BodyBytes) / n
		r.OverheadBytesPerSample = float64(r.OverheadBytes) / n
	}
	if r.Requests > 0 {
		r.SamplesPerRequest = float64(r.Samples) / float64(r.Requests)
	}
	if ss := float64(r.Series) * dur; ss > 0 {
		r.CPUUsPerSeriesSecond = r.CPUSeconds * 1e6 / ss
		r.WireBytesPerSeriesSecond = float64(r.WireBytes) / ss
		r.SamplesPerSeriesSecond = float64(r.Samples) / ss
	}
	return r
}

// fields lists SideReport's numeric figures by JSON name, for the ratios
// and the table.
func fields(s SideReport) []struct {
	name string
	v    float64
} {
	return []struct {
		name string
		v    float64
	}{
		{"cpu_seconds", s.CPUSeconds},
		{"rss_bytes", float64(s.RSSBytes)},
		{"vm_hwm_bytes", float64(s.VmHWMBytes)},
		{"series", float64(s.Series)},
		{"series_node", float64(s.SeriesNode)},
		{"samples", float64(s.Samples)},
		{"wire_bytes", float64(s.WireBytes)},
		{"wire_bytes_client_to_server", float64(s.WireBytesClientToServer)},
		{"wire_bytes_server_to_client", float64(s.WireBytesServerToClient)},
		{"freshness_p50_ms", s.FreshnessP50MS},
		{"freshness_p99_ms", s.FreshnessP99MS},
		{"freshness_max_ms", s.FreshnessMaxMS},
		{"cpu_us_per_series_second", s.CPUUsPerSeriesSecond},
		{"wire_bytes_per_series_second", s.WireBytesPerSeriesSecond},
		{"samples_per_series_second", s.SamplesPerSeriesSecond},
		{"victoriametrics_cpu_seconds", s.VictoriaMetricsCPUSecs},
		{"wire_bytes_per_sample", s.WireBytesPerSample},
		{"cpu_us_per_sample", s.CPUUsPerSample},
		{"requests", float64(s.Requests)},
		{"samples_per_request", s.SamplesPerRequest},
		{"body_bytes", float64(s.BodyBytes)},
		{"overhead_bytes", float64(s.OverheadBytes)},
		{"body_bytes_per_sample", s.BodyBytesPerSample},
		{"overhead_bytes_per_sample", s.OverheadBytesPerSample},
	}
}

func ratios(a, b SideReport) map[string]float64 {
	out := map[string]float64{}
	fb := fields(b)
	for i, f := range fields(a) {
		if fb[i].v != 0 {
			out[f.name] = round(f.v/fb[i].v, 4)
		}
	}
	return out
}

func targets(a, b SideReport) map[string]Target {
	t := map[string]Target{
		"cpu_us_per_series_second":     {Want: "A <= 0.1 x B", A: a.CPUUsPerSeriesSecond, Limit: 0.1 * b.CPUUsPerSeriesSecond},
		"wire_bytes_per_series_second": {Want: "A <= 0.1 x B", A: a.WireBytesPerSeriesSecond, Limit: 0.1 * b.WireBytesPerSeriesSecond},
		"freshness_p99_ms":             {Want: "A <= 2500", A: a.FreshnessP99MS, Limit: 2500},
		"rss_bytes":                    {Want: "A < 40 MiB", A: float64(a.RSSBytes), Limit: rssLimit},
		"wire_bytes_per_sample":        {Want: "A <= 8", A: a.WireBytesPerSample, Limit: 8},
	}
	for k, v := range t {
		v.Met = v.A <= v.Limit
		if k == "rss_bytes" {
			v.Met = v.A < v.Limit
		}
		if v.Limit > 0 {
			v.AOverLimit = round(v.A/v.Limit, 4)
		}
		if k == "freshness_p99_ms" && a.FreshnessSamples == 0 {
			v.Met = false // nothing measured is not a pass
		}
		t[k] = v
	}
	return t
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// printTable writes the report as a table for people.
func printTable(out io.Writer, r *Report) {
	fmt.Fprintf(out, "\nwindow %.1fs after %.1fs of warm-up; %d CPUs, %s, Linux %s; load %s -> %s; %d processes (%d idle ones started) -> %d\n\n",
		r.DurationS, r.WarmupS, r.Machine.Nproc, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd,
		r.Machine.ProcessesStart, r.Machine.Sleepers, r.Machine.ProcessesEnd)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\tA procfleet\tB node_exporter+vmagent\tA/B\t\n")
	fb := fields(r.B)
	for i, f := range fields(r.A) {
		ratio := "-"
		if v, ok := r.Ratio[f.name]; ok {
			ratio = fmt.Sprintf("%.3f", v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", f.name, num(f.v), num(fb[i].v), ratio)
	}
	tw.Flush()
	fmt.Fprintln(out, "\ntargets for A:")
	for _, k := range []string{"cpu_us_per_series_second", "wire_bytes_per_series_second", "freshness_p99_ms", "rss_bytes", "wire_bytes_per_sample"} {
		t := r.Targets[k]
		verdict := "met"
		if !t.Met {
			verdict = "MISSED"
		}
		floor := ""
		if t.FloorP99MS > 0 {
			floor = fmt.Sprintf(" (VictoriaMetrics' own p99 in this run: %s)", num(t.FloorP99MS))
		}
		fmt.Fprintf(out, "  %-29s %s: A %s, limit %s (A/limit %.2f)  %s%s\n", k, t.Want, num(t.A), num(t.Limit), t.AOverLimit, verdict, floor)
	}
	fmt.Fprintf(out, "\nfreshness: %s\n", r.FreshnessMode)
	fmt.Fprintf(out, "VictoriaMetrics' own floor (samples imported straight, no agent): p50 %s ms, p99 %s ms, max %s ms (%d samples)\n",
		num(r.Floor.FreshnessP50MS), num(r.Floor.FreshnessP99MS), num(r.Floor.FreshnessMaxMS), r.Floor.FreshnessSamples)
	if p := r.ProcessScans; p != nil && p.Scans > 0 {
		fmt.Fprintf(out, "\nprocess scans of side A: %g in the window; left unread per scan: stat %g, status %g, io %g\n",
			p.Scans, p.StatSkippedPerScan, p.StatusSkippedPerScan, p.IOSkippedPerScan)
	}
	if d := r.Redeliver; d != nil {
		fmt.Fprintf(out, "\nredelivery window (%gs): holds %s bytes in %.3g batches on average (peak %d bytes, %d batches); against an agent without it: CPU %+.3fs of %.3fs, RSS peak %+d bytes, VmHWM %+d bytes\n",
			d.WindowS, num(d.HeldBytesMean), d.HeldBatchesMean, d.HeldBytesPeak, d.HeldBatchesPeak,
			d.CPUSecondsDelta, d.OffCPUSeconds, d.RSSPeakDelta, d.VmHWMDelta)
	}
	if r.Profile != "" {
		fmt.Fprintf(out, "\nagent CPU profile: go tool pprof -top -nodecount 25 %s\n", r.Profile)
	}
}

// num formats v with about four significant digits.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1e4:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.4g", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
