package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// BenchmarkIngest compares the relay's ingest of the same samples as a
// gzip import and as remote write 1.0 and 2.0: 2000 node_exporter-like
// series of one sample each per request (a scrape's worth, as vmagent and
// Prometheus send), posted by 4 x GOMAXPROCS clients over loopback, each
// request checked (remote write: decompressed and converted to import
// lines) and stored with an fsync before the 204. Forwarding is off.
// Besides ns/op, allocations and MB/s (bytes as sent) it reports samples
// per second and per CPU-second of the whole process, clients included.
func BenchmarkIngest(b *testing.B) {
	const n = 2000
	ts := time.Now().UnixMilli()
	series := make([]rwSeries, n)
	var text bytes.Buffer
	for i := range series {
		v := float64(1000000+i*37) + float64(i%100)/100
		series[i] = rwSeries{labels: [][2]string{{"__name__", "node_cpu_seconds_total"}, {"cpu", fmt.Sprint(i % 64)}, {"mode", "idle"}, {"i", fmt.Sprint(i)}},
			values: []float64{v}, times: []int64{ts}}
		fmt.Fprintf(&text, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",i=\"%d\"} %v %d\n", i%64, i, v, ts)
	}
	for _, bc := range []struct {
		name   string
		path   string
		body   []byte
		header []string
	}{
		{"import-gzip", ImportPath, testenv.Gzip(b, text.String()), []string{"Content-Encoding", "gzip"}},
		{"remote-write-1", WritePath, rwBody(1, series), rwHeaders(1)},
		{"remote-write-2", WritePath, rwBody(2, series), rwHeaders(2)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := config.DefaultRelay()
			cfg.Listen = "127.0.0.1:0"
			cfg.WAL.Dir = b.TempDir()
			cfg.WAL.MaxBytes = 0
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
			url := "http://" + r.Addr() + bc.path
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var failed atomic.Int64
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			b.SetParallelism(4)
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bc.body))
					for i := 0; i < len(bc.header); i += 2 {
						req.Header.Set(bc.header[i], bc.header[i+1])
					}
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
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d requests failed", f, b.N)
			}
			total := float64(b.N) * n
			b.ReportMetric(total/wall.Seconds(), "samples/s")
			b.ReportMetric(total/cpu.Seconds(), "samples/cpu-s")
			b.ReportMetric(float64(len(bc.body))/n, "wire-bytes/sample")
		})
	}
}
