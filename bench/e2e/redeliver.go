package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// The cost of side A's redelivery window (ship.redeliver_window, default
// 10s): what it holds, read from the agent's own gauges every second of
// the measured window, and the CPU and memory of side A's agent next to a
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
	// A's agent, sampled every second of the window: the compressed bodies
	// it keeps, which is the window's memory (plus about 200 bytes of
	// bookkeeping per batch).
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
	p, err := b.ps.Start("procfleet-nowindow", b.bins.procfleet, "agent", "--config", cfg,
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
// CPU ticks and starts sampling side A's window gauges into w; the
// function returned stops the sampler and waits for it (call it also on
// an error).
func (b *bench) startWindowCost(ctx context.Context, w *window) (stop func(), err error) {
	if b.off == nil {
		return func() {}, nil
	}
	w.off, w.held = b.off, &heldSampler{addr: b.agentAt, offAddr: b.off.addr}
	if b.off.start, err = cpuTicks(b.off.proc.Pid()); err != nil {
		return func() {}, fmt.Errorf("%s: %w", b.off.proc.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.held.run(ctx) }()
	return func() { cancel(); <-done }, nil
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

// heldSampler reads side A's window gauges every second. It reads the
// other agent's /metrics as often, so that both pay the same for it.
type heldSampler struct {
	addr    string // side A's agent /metrics
	offAddr string // the agent without a window

	mu                 sync.Mutex
	bytes, batches     []float64
	bytesMax, batchMax float64
}

func (h *heldSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		_, _ = benchproc.Get(ctx, h.offAddr, "/metrics")
		if text, err := benchproc.Get(ctx, h.addr, "/metrics"); err == nil {
			by := sumMetric(string(text), "procfleet_ship_redeliver_window_bytes")
			ba := sumMetric(string(text), "procfleet_ship_redeliver_window_batches")
			h.mu.Lock()
			h.bytes, h.batches = append(h.bytes, by), append(h.batches, ba)
			h.bytesMax, h.batchMax = max(h.bytesMax, by), max(h.batchMax, ba)
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// redeliverReport derives the window's cost; nil without -window-cost.
func redeliverReport(w *window, a SideReport, clkTck int64) *RedeliverReport {
	if w.off == nil {
		return nil
	}
	h, off := w.held, w.off
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &RedeliverReport{
		Setup:           "side A's agent (default ship.redeliver_window 10s, redeliver_max_bytes 8MiB) against the same agent with ship.redeliver_window: 0 pushing to a sink",
		WindowS:         10,
		MaxBytes:        8 << 20,
		HeldBytesPeak:   int64(h.bytesMax),
		HeldBytesMean:   round(mean(h.bytes), 0),
		HeldBatchesPeak: int64(h.batchMax),
		HeldBatchesMean: round(mean(h.batches), 2),
		HeldSamples:     len(h.bytes),
		OffCPUSeconds:   float64(off.end-off.start) / float64(clkTck),
		OffRSSPeakBytes: w.offRSSPeak,
		OffVmHWMBytes:   off.hwm,
	}
	r.CPUSecondsDelta = round(a.CPUSeconds-r.OffCPUSeconds, 3)
	r.RSSPeakDelta = a.RSSBytes - r.OffRSSPeakBytes
	r.VmHWMDelta = a.VmHWMBytes - r.OffVmHWMBytes
	return r
}
