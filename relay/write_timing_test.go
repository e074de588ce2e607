package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
	series, text := ingestData()
	for _, bc := range []struct {
		name   string
		path   string
		body   []byte
		header []string
		sync   time.Duration
	}{
		{"import-gzip", ImportPath, testenv.Gzip(b, text), []string{"Content-Encoding", "gzip"}, 0},
		{"remote-write-1", WritePath, rwBody(1, series), rwHeaders(1), 0},
		{"remote-write-2", WritePath, rwBody(2, series), rwHeaders(2), 0},
		// As vmagent, which does not fsync each request.
		{"remote-write-1-sync=100ms", WritePath, rwBody(1, series), rwHeaders(1), 100 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
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
			runIngest(b, "http://"+r.Addr()+bc.path, bc.body, bc.header, func() time.Duration { return 0 })
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkIngestVmagent is BenchmarkIngest's remote write 1.0 load taken
// by vmagent v1.151.0 (bin/vmagent), which queues it on disk for an
// unreachable upstream as the relay stores it in its log. Its CPU time,
// from /proc, is added to the benchmark process's (the clients'), so
// that samples/cpu-s compares with BenchmarkIngest's. vmagent does not
// fsync each request; the relay does.
func BenchmarkIngestVmagent(b *testing.B) {
	series, _ := ingestData()
	addr := testenv.FreeAddr(b)
	cmd := exec.Command(testenv.Bin(b, "vmagent"), "-httpListenAddr="+addr,
		"-remoteWrite.url=http://127.0.0.1:1/api/v1/write", "-remoteWrite.forcePromProto",
		"-remoteWrite.tmpDataPath="+b.TempDir(), "-loggerLevel=ERROR")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("vmagent not healthy after 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runIngest(b, "http://"+addr+"/api/v1/write", rwBody(1, series), rwHeaders(1), func() time.Duration { return procCPU(b, cmd.Process.Pid) })
}

// procCPU returns the user and system time of process pid.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// ingestData returns 2000 node_exporter-like series of one sample each,
// and the same as import lines.
func ingestData() ([]rwSeries, string) {
	ts := time.Now().UnixMilli()
	series := make([]rwSeries, ingestSeries)
	var text strings.Builder
	for i := range series {
		v := float64(1000000+i*37) + float64(i%100)/100
		series[i] = rwSeries{labels: [][2]string{{"__name__", "node_cpu_seconds_total"}, {"cpu", fmt.Sprint(i % 64)}, {"mode", "idle"}, {"i", fmt.Sprint(i)}},
			values: []float64{v}, times: []int64{ts}}
		fmt.Fprintf(&text, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\",i=\"%d\"} %v %d\n", i%64, i, v, ts)
	}
	return series, text.String()
}

const ingestSeries = 2000

// runIngest posts body to url from 4 x GOMAXPROCS clients b.N times and
// reports samples per second and per CPU-second of this process and, by
// extraCPU, of the receiver when it runs in another.
func runIngest(b *testing.B, url string, body []byte, header []string, extraCPU func() time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4)
	b.ResetTimer()
	cpu0, extra0, t0 := cpuTime(), extraCPU(), time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			for i := 0; i < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
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
	cpu, wall := cpuTime()-cpu0+extraCPU()-extra0, time.Since(t0)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	total := float64(b.N) * ingestSeries
	b.ReportMetric(total/wall.Seconds(), "samples/s")
	b.ReportMetric(total/cpu.Seconds(), "samples/cpu-s")
	b.ReportMetric(float64(len(body))/ingestSeries, "wire-bytes/sample")
}
