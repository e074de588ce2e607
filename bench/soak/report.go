package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a soak, printed as JSON.
type Report struct {
	Duration       string `json:"duration"`
	FastAgents     int    `json:"fast_agents"`
	SeriesPerBody  int    `json:"series_per_body"`
	SlowClients    int    `json:"slow_clients"`
	TokenRotations int    `json:"token_rotations"`

	FastRequests   int            `json:"fast_requests"`
	FastStatus     map[string]int `json:"fast_status"`
	LatencyP50Ms   float64        `json:"fast_latency_p50_ms"`
	LatencyP99Ms   float64        `json:"fast_latency_p99_ms"`
	LatencyMaxMs   float64        `json:"fast_latency_max_ms"`
	AckedBodies    int            `json:"acked_bodies"`
	UnackedBodies  int            `json:"unacked_bodies"`
	AckedSamples   int            `json:"acked_samples"`
	SamplesInVM    int            `json:"samples_in_victoriametrics"`
	LostSamples    int            `json:"lost_samples"`
	SlowRequests   int            `json:"slow_requests"`
	SlowStatus     map[string]int `json:"slow_status"`
	RelayPeakRSS   int64          `json:"relay_peak_rss_bytes"`
	RelayHWM       int64          `json:"relay_hwm_bytes"`
	PeakInflight   float64        `json:"relay_peak_inflight_bytes"`
	DrainSeconds   float64        `json:"drain_seconds"`
	Failures       []string       `json:"failures"`
	ThresholdsMet  bool           `json:"thresholds_met"`
	ThresholdP99Ms float64        `json:"threshold_p99_ms"`
	ThresholdRSS   int64          `json:"threshold_rss_bytes"`
}

// verify waits for the relay to forward everything, counts in
// VictoriaMetrics what the fast agents had acknowledged, and reports.
func (s *soak) verify(ctx context.Context, start, end time.Time) (*Report, error) {
	drainStart := time.Now()
	if err := s.waitDrained(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	drain := time.Since(drainStart)
	_, hwm, _ := memStatus(s.relay.cmd.Process.Pid)
	want := 0
	for _, ts := range s.fast.acked {
		want += len(ts) * s.o.series
	}
	var got map[string]int
	var total int
	deadline := time.Now().Add(time.Minute)
	for {
		_, _ = get(ctx, "http://"+s.vmAddr+"/internal/force_flush")
		var err error
		got, total, err = s.exported(ctx, start, end)
		if err == nil && total >= want {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			break
		}
		time.Sleep(time.Second)
	}
	return s.report(start, end, got, total, hwm, drain), nil
}

// exported returns, by agent and timestamp, how many of the agent's
// series VictoriaMetrics holds at it, and the samples in all.
func (s *soak) exported(ctx context.Context, start, end time.Time) (map[string]int, int, error) {
	got := map[string]int{}
	total := 0
	err := export(ctx, s.vmAddr, "soak_sample", start.Add(-2*time.Second), end.Add(35*time.Second), func(e exported) {
		for _, ts := range e.Timestamps {
			got[e.Metric["agent"]+"/"+strconv.FormatInt(ts, 10)]++
			total++
		}
	})
	return got, total, err
}

// waitDrained waits until the relay's log holds nothing.
func (s *soak) waitDrained(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, ok, err := metric(ctx, "http://"+s.relayAddr+"/metrics", "procfleet_spool_records")
		if err == nil && ok && v == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay's log still holds %v records %s after the load: %v", v, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *soak) report(start, end time.Time, got map[string]int, total int, hwm int64, drain time.Duration) *Report {
	f, sl := s.fast, s.slow
	sortDurations(f.latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := &Report{
		Duration: end.Sub(start).Round(time.Second).String(), FastAgents: s.o.fast, SeriesPerBody: s.o.series,
		SlowClients: s.o.slow, TokenRotations: s.tok.n,
		FastRequests: len(f.latencies), FastStatus: f.status,
		LatencyP50Ms: ms(percentile(f.latencies, 0.5)), LatencyP99Ms: ms(percentile(f.latencies, 0.99)),
		UnackedBodies: f.unacked, SamplesInVM: total,
		SlowRequests: sl.connections, SlowStatus: sl.status,
		RelayPeakRSS: max(s.peakRSS, 0), RelayHWM: hwm, PeakInflight: s.peakInflight,
		DrainSeconds:   drain.Seconds(),
		ThresholdP99Ms: ms(s.o.maxP99), ThresholdRSS: s.o.maxRSS,
	}
	if n := len(f.latencies); n > 0 {
		r.LatencyMaxMs = ms(f.latencies[n-1])
	}
	for agent, tss := range f.acked {
		r.AckedBodies += len(tss)
		for _, ts := range tss {
			r.AckedSamples += s.o.series
			r.LostSamples += max(s.o.series-got[strconv.Itoa(agent)+"/"+strconv.FormatInt(ts, 10)], 0)
		}
	}
	if r.LostSamples > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d acknowledged samples are not in VictoriaMetrics", r.LostSamples))
	}
	if r.AckedBodies == 0 {
		r.Failures = append(r.Failures, "no body was acknowledged")
	}
	if r.LatencyP99Ms > ms(s.o.maxP99) {
		r.Failures = append(r.Failures, fmt.Sprintf("fast p99 latency %.1f ms is over %.0f ms", r.LatencyP99Ms, ms(s.o.maxP99)))
	}
	if peak := max(r.RelayPeakRSS, r.RelayHWM); peak > s.o.maxRSS {
		r.Failures = append(r.Failures, fmt.Sprintf("relay peak RSS %.1f MiB is over %.0f MiB", float64(peak)/(1<<20), float64(s.o.maxRSS)/(1<<20)))
	}
	r.ThresholdsMet = len(r.Failures) == 0
	return r
}

func printTable(w io.Writer, r *Report) {
	statuses := func(m map[string]int) string {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s:%d ", k, m[k])
		}
		return strings.TrimSpace(b.String())
	}
	fmt.Fprintf(w, "soak %s: %d fast agents (%d series/s each), %d slow clients, %d token rotations\n",
		r.Duration, r.FastAgents, r.SeriesPerBody, r.SlowClients, r.TokenRotations)
	fmt.Fprintf(w, "  fast requests    %d (%s), latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		r.FastRequests, statuses(r.FastStatus), r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	fmt.Fprintf(w, "  acknowledged     %d bodies, %d samples (%d bodies given up)\n", r.AckedBodies, r.AckedSamples, r.UnackedBodies)
	fmt.Fprintf(w, "  in VictoriaMetrics %d samples, %d acknowledged ones missing\n", r.SamplesInVM, r.LostSamples)
	fmt.Fprintf(w, "  slow requests    %d (%s)\n", r.SlowRequests, statuses(r.SlowStatus))
	fmt.Fprintf(w, "  relay memory     peak RSS %.1f MiB (VmHWM %.1f MiB), bodies held at most %.0f KiB\n",
		float64(r.RelayPeakRSS)/(1<<20), float64(r.RelayHWM)/(1<<20), r.PeakInflight/1024)
	fmt.Fprintf(w, "  drained in       %.1f s\n", r.DrainSeconds)
	if r.ThresholdsMet {
		fmt.Fprintf(w, "  thresholds met (p99 < %.0f ms, RSS < %.0f MiB, nothing lost)\n", r.ThresholdP99Ms, float64(r.ThresholdRSS)/(1<<20))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAILED: %s\n", f)
	}
}
