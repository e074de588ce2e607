package relay

import (
	"bytes"
	"context"
	"fmt"
	"github.com/procfleet/procfleet/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

// benchBody returns a gzip body of node_exporter-like lines, about the
// size of an agent's batch, and its sample count.
func benchBody(b *testing.B, lines int) ([]byte, int) {
	var sb strings.Builder
	ts := time.Now().UnixMilli()
	for i := range lines {
		fmt.Fprintf(&sb, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\"} %d.%02d %d\n", i%64, 1000000+i*37, i%100, ts)
	}
	return testenv.Gzip(b, sb.String()), lines
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImport measures the relay's ingest: gzip bodies posted by 8
// concurrent clients over loopback, each checked line by line and stored
// in the log before the 204. Forwarding is off (the upstream is
// unreachable and never probed), so this is the cost of taking data.
// Besides ns/op and MB/s (compressed bytes) it reports samples per second
// and both per CPU-second of the whole process (clients included, so the
// per-core figures are conservative).
func BenchmarkImport(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync time.Duration
	}{{"sync=every", 0}, {"sync=100ms", 100 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			body, samples := benchBody(b, 2000)
			cfg := config.DefaultRelay()
			cfg.Listen = "127.0.0.1:0"
			cfg.WAL.Dir = b.TempDir()
			cfg.WAL.MaxBytes = 0
			cfg.WAL.SyncInterval = config.Duration(bc.sync)
			cfg.Ship.Upstreams = []string{"http://127.0.0.1:1/api/v1/import/prometheus"}
			cfg.Ship.ProbeInterval = config.Duration(time.Hour)
			cfg.Ship.FailuresToUnhealthy = 1
			r, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-r.Recovered()
			url := "http://" + r.Addr() + ImportPath
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var failed atomic.Int64
			b.SetBytes(int64(len(body)))
			b.SetParallelism(4) // 4 x GOMAXPROCS clients
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Content-Encoding", "gzip")
					resp, err := client.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			cpu, wall := cpuTime()-cpu0, time.Since(t0)
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d imports failed", n, b.N)
			}
			total := float64(b.N) * float64(samples)
			b.ReportMetric(total/wall.Seconds(), "samples/s")
			b.ReportMetric(total/cpu.Seconds(), "samples/cpu-s")
			b.ReportMetric(float64(b.N)*float64(len(body))/1e6/cpu.Seconds(), "MB/cpu-s")
		})
	}
}
