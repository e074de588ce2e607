package main

import (
	"context"
	"fmt"
)

// ScanReport is what side A's process generator saved over the window, as
// the agent pushed its own counters to side A's VictoriaMetrics (one sample
// each 10 s; the harness does not read the agent's /metrics): how many scans
// it ran, and per scan how many files it left unread because nothing in them
// could have changed (stat: idle kernel threads and processes; status and
// io: the schedstat gate).
type ScanReport struct {
	Scans                float64 `json:"scans"`
	StatSkippedPerScan   float64 `json:"stat_skipped_per_scan"`
	StatusSkippedPerScan float64 `json:"status_skipped_per_scan"`
	IOSkippedPerScan     float64 `json:"io_skipped_per_scan"`
}

const scanNote = "process_scans: change between the first and last samples in the window of side A's procfleet_generator_runs_total{generator=\"process\"} (scans) and procfleet_generator_reads_skipped_total{generator=\"process\",file=...} (per scan), from the agent's self-metrics in side A's VictoriaMetrics (one sample each 10 s: a window holding fewer than two leaves every field 0)"

// processScans reads side A's process generator counters over the window
// [start, end] from side A's VictoriaMetrics, which must have been flushed:
// each counter's change between its first and last sample in the window
// (no extrapolation), so at least two samples, 10 s apart, must lie in it.
func (b *bench) processScans(ctx context.Context, w *window) (*ScanReport, error) {
	rng := fmt.Sprintf("[%dms]", w.end.Sub(w.start).Milliseconds())
	runs := fmt.Sprintf(`procfleet_generator_runs_total{instance=%q,generator="process"}`, b.a.instance)
	skipped := func(file string) string {
		return fmt.Sprintf(`procfleet_generator_reads_skipped_total{instance=%q,generator="process",file=%q}`, b.a.instance, file)
	}
	delta := func(sel string) string {
		return fmt.Sprintf(`sum(last_over_time(%s%s) - first_over_time(%s%s))`, sel, rng, sel, rng)
	}
	n, err := b.a.vm.queryScalar(ctx, fmt.Sprintf(`sum(count_over_time(%s%s))`, runs, rng), w.end)
	if err != nil {
		return nil, err
	}
	if n < 2 {
		logf("side A's VictoriaMetrics holds %g samples of %s in the window, too few for process_scans (it is left at 0)", n, runs)
		return &ScanReport{}, nil
	}
	r := &ScanReport{}
	var stat, status, io float64
	if err := b.a.vm.queryScalars(ctx, w.end, []scalarQuery{
		{delta(runs), &r.Scans},
		{delta(skipped("stat")), &stat},
		{delta(skipped("status")), &status},
		{delta(skipped("io")), &io},
	}); err != nil {
		return nil, err
	}
	if r.Scans <= 0 {
		logf("side A's process generator ran no scan between its first and last samples in the window: process_scans left at 0")
		return &ScanReport{}, nil
	}
	r.StatSkippedPerScan = round(stat/r.Scans, 1)
	r.StatusSkippedPerScan = round(status/r.Scans, 1)
	r.IOSkippedPerScan = round(io/r.Scans, 1)
	return r, nil
}
