package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

func TestParseStatTicks(t *testing.T) {
	f := func(stat string, want int64, wantErr bool) {
		t.Helper()
		got, err := parseStatTicks(stat)
		if (err != nil) != wantErr || got != want {
			t.Errorf("parseStatTicks(%q) = %d, %v; want %d, error %v", stat, got, err, want, wantErr)
		}
	}
	// Fields 14 and 15 are 7 and 3; the name holds a space and a ')'.
	f("42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 200", 10, false)
	f("42 (x) S 1 42 42 0 -1 4194560 100 0 0 0 7", 0, true)
	f("42 no name", 0, true)
	f("42 (x) S 1 42 42 0 -1 4194560 100 0 0 0 seven 3 0", 0, true)
}

func TestParseStatus(t *testing.T) {
	rss, hwm, err := parseStatus("Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n")
	if err != nil || rss != 1<<20 || hwm != 2<<20 {
		t.Errorf("parseStatus = %d, %d, %v; want %d, %d, nil", rss, hwm, err, 1<<20, 2<<20)
	}
	if _, _, err := parseStatus("VmRSS:\t1024 MB\n"); err == nil {
		t.Error("parseStatus accepted a unit other than kB")
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP vm_rows_inserted_total x
vm_rows_inserted_total{type="prometheus"} 10
vm_rows_inserted_total{type="promremotewrite"} 5.5
vm_rows_inserted_total_other 100
vm_rows_inserted_total 1
`
	if got := sumMetric(text, "vm_rows_inserted_total"); got != 16.5 {
		t.Errorf("sumMetric = %v, want 16.5", got)
	}
}

func TestPercentile(t *testing.T) {
	d := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0.5: 5, 0.99: 10, 0.1: 1, 0: 1} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(%v) = %v, want %v", q, got, want)
		}
	}
}

func TestFreshnessMatch(t *testing.T) {
	got := strings.Join(freshnessMatch("h"), " ")
	want := `node_context_switches_total{instance="h"} node_intr_total{instance="h"} ` +
		`node_cpu_seconds_total{instance="h",cpu="0",mode="idle"} node_memory_MemFree_bytes{instance="h"}`
	if got != want {
		t.Errorf("freshnessMatch = %s\nwant %s", got, want)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("first line\nsecond\nthird\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := benchproc.Tail(p, 10); got != "third\n" {
		t.Errorf("tail = %q, want %q", got, "third\n")
	}
	if got := benchproc.Tail(p, 1000); got != "first line\nsecond\nthird\n" {
		t.Errorf("tail of a short file = %q", got)
	}
}

// TestProxyCounts sends through the proxy to an echo server and checks
// both counters.
func TestProxyCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		_, _ = c.Write(append(b, b...))
	}()
	p, err := benchproc.NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Serve(ctx)

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 20 {
		t.Fatalf("read %q, %v; want 20 bytes", got, err)
	}
	if up, down := p.Counters(); up != 10 || down != 20 {
		t.Errorf("counters = %d up, %d down; want 10, 20", up, down)
	}
}

// TestFloorAgainstVictoriaMetrics runs the floor writer and its prober
// against a VictoriaMetrics built by `make tools`: samples imported
// straight become queryable, and their delay is measured (it cannot be
// negative, and VictoriaMetrics keeps new rows out of search for a while).
func TestFloorAgainstVictoriaMetrics(t *testing.T) {
	ctx, vm := startTestVM(t)
	f := &floor{vm: vm}
	f.prober = newProber(vm, []string{floorSeries}, false)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go f.prober.run(pctx)
	go f.run(pctx)
	// The window opens once the series exists, as in a run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.prober.mu.Lock()
		n := len(f.prober.latest)
		f.prober.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the floor's series did not become queryable within 30s")
		}
		time.Sleep(pollInterval)
	}
	from := time.Now()
	f.prober.setWindow(from, from.Add(3*time.Second))
	deadline = time.Now().Add(20 * time.Second)
	for !f.prober.caughtUp() && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	stop()
	s, err := f.summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.N < 2 || s.P50 <= 0 || s.Max < s.P50 {
		t.Errorf("floor freshness = %+v; want at least 2 samples with positive delays", s)
	}
	t.Logf("floor: %d samples, p50 %.0f ms, max %.0f ms", s.N, s.P50, s.Max)
}

func TestFloorSummaryWithoutSamples(t *testing.T) {
	f := &floor{vm: &vmServer{}, sent: 3, errs: 1}
	f.prober = newProber(f.vm, []string{floorSeries}, false)
	if _, err := f.summary(); err == nil || !strings.Contains(err.Error(), "none of the 3 samples") {
		t.Errorf("summary without samples: %v; want an error naming the 3 samples sent", err)
	}
}

// TestProberSeesTheCurrentSecond: a sample whose timestamp is 100 ms into
// a second is returned by the next poll after it is stored, not only once
// the next second begins (VictoriaMetrics' export rounds a missing end
// down to the second). With force_flush before each poll, the delay is a
// poll interval or two, not 900 ms.
func TestProberSeesTheCurrentSecond(t *testing.T) {
	ctx, vm := startTestVM(t)
	f := &floor{vm: vm}
	// The series exists first, as in a run.
	if err := f.write(ctx, 1, time.Now().Add(-10*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.prober = newProber(vm, []string{floorSeries}, true)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go f.prober.run(pctx)
	time.Sleep(3 * pollInterval)
	// 100 ms into the next second.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 100*time.Millisecond).Sub(now))
	at := time.Now().Truncate(time.Millisecond) // the resolution of a timestamp
	f.prober.setWindow(at, at)
	if err := f.write(ctx, 2, at); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.prober.caughtUp() && time.Now().Before(deadline) {
		time.Sleep(pollInterval / 2)
	}
	stop()
	s, err := f.summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Max > 500 {
		t.Errorf("a sample %d ms into its second was first returned %.0f ms after its timestamp; want within 500 ms with force_flush",
			at.Nanosecond()/1e6, s.Max)
	}
}

// startTestVM starts a VictoriaMetrics as a run does, from the binary
// `make tools` builds, stopped at the end of t; it skips t without one.
func startTestVM(t *testing.T) (context.Context, *vmServer) {
	t.Helper()
	bin, err := filepath.Abs("../../bin/victoria-metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s: run make tools", bin)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	ps := benchproc.NewProcs(dir, cancel)
	t.Cleanup(ps.StopAll)
	b := &bench{dir: dir, ps: ps, bins: binaries{victoriaMetrics: bin}}
	vm, err := b.startVM("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitOK(ctx, "VictoriaMetrics", vm.addr, "/health", time.Minute); err != nil {
		t.Fatal(err)
	}
	return ctx, vm
}
