package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// The cost of side A's redelivery window (ship.redeliver_window, default
// 10s): what it holds, read from the agent's own gauges as it pushes them
// to side A's VictoriaMetrics (every 10 s, the agent's self-metrics
// interval), and the CPU and memory of side A's agent next to a
// second agent with the same configuration but ship.redeliver_window: 0,
// which pushes to a sink in this program (so that side A's figures stay
// as they are).

// RedeliverReport is the redelivery window's cost on side A.
type RedeliverReport struct {
	Setup string `json:"setup"`
	// WindowS and MaxBytes are side A's ship.redeliver_window and
	// ship.redeliver_max_bytes (the defaults).
	WindowS  float64 `json:"window_s"`
	MaxBytes int64   `json:"max_bytes"`
	// Held*: procfleet_ship_redeliver_window_bytes and _batches of side
	// A's agent over the window, as the agent pushed them to side A's
	// VictoriaMetrics (one sample each 10 s): the compressed bodies it
	// keeps, which is the window's memory (plus about 200 bytes of
	// bookkeeping per batch). The harness does not read the agent's
	// /metrics for them: a read every second cost the agent it measures
	// about 0.9 MiB of resident memory and a sixth of its CPU
	// (docs/performance.md).
	HeldBytesPeak   int64   `json:"held_bytes_peak"`
	HeldBytesMean   float64 `json:"held_bytes_mean"`
	HeldBatchesPeak int64   `json:"held_batches_peak"`
	HeldBatchesMean float64 `json:"held_batches_mean"`
	HeldSamples     int     `json:"held_samples"`
	// Off*: the agent without the window over the same window; Delta*:
	// side A's agent less that one (two processes on one machine: a
	// difference within a few percent of either is noise).
	OffCPUSeconds   float64 `json:"off_cpu_seconds"`
	OffRSSPeakBytes int64   `json:"off_rss_peak_bytes"`
	OffVmHWMBytes   int64   `json:"off_vm_hwm_bytes"`
	CPUSecondsDelta float64 `json:"cpu_seconds_delta"`
	RSSPeakDelta    int64   `json:"rss_peak_bytes_delta"`
	VmHWMDelta      int64   `json:"vm_hwm_bytes_delta"`
}

// offAgent is the agent without the window and the sink it pushes to.
type offAgent struct {
	proc     *benchproc.Proc
	addr     string // its /metrics
	sink     *http.Server
	sinkAddr string
	// start and end are its CPU ticks at the window's ends.
	start, end int64
	hwm        int64
}

// startOffAgent starts the sink and the agent without a window.
func (b *bench) startOffAgent() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot listen for the sink: %w", err)
	}
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answer as VictoriaMetrics does, so that the agent streams its
		// requests to the sink as side A's agent does to side A's
		// VictoriaMetrics (ship.stream_for): without the header it would
		// send one request a batch, and the two agents would differ by
		// more than the window.
		w.Header().Set("X-Server-Hostname", "bench-sink")
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "OK")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sink.Serve(ln) }()
	b.off = &offAgent{sink: sink, sinkAddr: ln.Addr().String()}
	cfg := filepath.Join(b.dir, "agent-nowindow.yaml")
	if err := os.WriteFile(cfg, []byte("ship:\n  redeliver_window: 0s\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write the config of the agent without a window: %w", err)
	}
	exe, err := ownCopy(b.dir, "procfleet-nowindow", b.bins.procfleet)
	if err != nil {
		return err
	}
	p, err := b.ps.Start("procfleet-nowindow", exe, "agent", "--config", cfg,
		"--upstream", "http://"+b.off.sinkAddr+"/api/v1/import/prometheus",
		"--listen", "127.0.0.1:0",
		"--hostname", b.a.instance+"-nowindow")
	if err != nil {
		return err
	}
	b.off.proc = p
	return nil
}

// stopSink closes the sink, if any.
func (b *bench) stopSink() {
	if b.off != nil {
		_ = b.off.sink.Close()
	}
}

// startWindowCost, with -window-cost, reads the agent without a window's
// CPU ticks at the window's start.
func (b *bench) startWindowCost(w *window) error {
	if b.off == nil {
		return nil
	}
	w.off = b.off
	var err error
	if b.off.start, err = cpuTicks(b.off.proc.Pid()); err != nil {
		return fmt.Errorf("%s: %w", b.off.proc.Name, err)
	}
	return nil
}

// endWindow reads the agent's CPU ticks and VmHWM at the window's end.
func (o *offAgent) endWindow() error {
	var err error
	if o.end, err = cpuTicks(o.proc.Pid()); err != nil {
		return fmt.Errorf("%s: %w", o.proc.Name, err)
	}
	_, o.hwm, _ = memStatus(o.proc.Pid())
	return nil
}

// held is what side A's window gauges said over the measured window.
type held struct {
	bytesMax, bytesMean     float64
	batchesMax, batchesMean float64
	samples                 float64
}

// heldGauges reads side A's window gauges over the window [start, end]
// from side A's VictoriaMetrics, where the agent pushes its own metrics.
func (b *bench) heldGauges(ctx context.Context, w *window) (*held, error) {
	rng := fmt.Sprintf("[%dms]", w.end.Sub(w.start).Milliseconds())
	sel := func(name string) string { return fmt.Sprintf(`%s{instance=%q}`, name, b.a.instance) + rng }
	h := &held{}
	if err := b.a.vm.queryScalars(ctx, w.end, []scalarQuery{
		{"max_over_time(" + sel("procfleet_ship_redeliver_window_bytes") + ")", &h.bytesMax},
		{"avg_over_time(" + sel("procfleet_ship_redeliver_window_bytes") + ")", &h.bytesMean},
		{"max_over_time(" + sel("procfleet_ship_redeliver_window_batches") + ")", &h.batchesMax},
		{"avg_over_time(" + sel("procfleet_ship_redeliver_window_batches") + ")", &h.batchesMean},
		{"count_over_time(" + sel("procfleet_ship_redeliver_window_bytes") + ")", &h.samples},
	}); err != nil {
		return nil, err
	}
	if h.samples == 0 {
		// A window shorter than the self-metrics interval may hold none.
		logf("side A's VictoriaMetrics holds no procfleet_ship_redeliver_window_bytes of %s in the window: held_* are 0", b.a.instance)
	}
	return h, nil
}

// redeliverReport derives the window's cost; nil without -window-cost.
func redeliverReport(w *window, a SideReport, clkTck int64) *RedeliverReport {
	if w.off == nil {
		return nil
	}
	h, off := w.held, w.off
	r := &RedeliverReport{
		Setup:           "side A's agent (default ship.redeliver_window 10s, redeliver_max_bytes 8MiB) against the same agent with ship.redeliver_window: 0 pushing to a sink",
		WindowS:         10,
		MaxBytes:        8 << 20,
		HeldBytesPeak:   int64(h.bytesMax),
		HeldBytesMean:   round(h.bytesMean, 0),
		HeldBatchesPeak: int64(h.batchesMax),
		HeldBatchesMean: round(h.batchesMean, 2),
		HeldSamples:     int(h.samples),
		OffCPUSeconds:   float64(off.end-off.start) / float64(clkTck),
		OffRSSPeakBytes: w.offRSSPeak,
		OffVmHWMBytes:   off.hwm,
	}
	r.CPUSecondsDelta = round(a.CPUSeconds-r.OffCPUSeconds, 3)
	r.RSSPeakDelta = a.RSSBytes - r.OffRSSPeakBytes
	r.VmHWMDelta = a.VmHWMBytes - r.OffVmHWMBytes
	return r
}
