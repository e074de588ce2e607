package compress

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
)

// BenchmarkCompressor measures the compressor's throughput (MB/s of
// uncompressed input) and ratio per encoding (run with -benchtime 256x
// or more, so that every distinct chunk is compressed once), on text shaped like the
// agent's /proc output and like a scraper's (1,000 series per target with
// the target's job and instance, bench/scrape's series).
func BenchmarkCompressor(b *testing.B) {
	proc := func(i int) []byte {
		return fmt.Appendf(nil, "proc_pid_cpu_seconds_total{pid=\"%d\",mode=\"user\"} %d.%02d 1700000000000\n", 1000+i, i*7, i%100)
	}
	scraped := func(i int) []byte {
		t, k := i/1000, i%1000
		line := fmt.Appendf(nil, `bench_requests_%d_total{code="200",handler="/api/v1/h%d",instance="127.0.0.1:%d",job="bench",shard="%d"} `, k%10, k, 30000+t, t%16)
		line = strconv.AppendInt(line, int64(123456+t)*int64(k+1), 10)
		return append(line, " 1764885600123\n"...)
	}
	for _, text := range []struct {
		name string
		line func(int) []byte
	}{{"proc", proc}, {"scraped", scraped}} {
		var chunks [][]byte
		for i, chunk := 0, []byte(nil); len(chunks) < 256; i++ {
			l := text.line(i)
			if len(chunk)+len(l) > emit.BufferSize-emit.FlushMargin {
				chunks, chunk = append(chunks, chunk), nil
			}
			chunk = append(chunk, l...)
		}
		for _, enc := range []struct {
			name     string
			encoding string
			level    int
		}{{"gzip-1", config.EncodingGzip, 1}, {"gzip-5", config.EncodingGzip, 5}, {"gzip-9", config.EncodingGzip, 9}, {"zstd", config.EncodingZstd, 5}} {
			b.Run(text.name+"/"+enc.name, func(b *testing.B) {
				pool := emit.NewPool(4)
				cfg := config.Compress{Encoding: enc.encoding, Level: enc.level, TargetBytes: 512 << 10, FlushAge: config.Duration(time.Minute)}
				c, err := New(cfg, pool, func(Batch) {}, metrics.NewSet())
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(chunks[0])))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					buf, _ := pool.Get(context.Background())
					buf.B = append(buf.B, chunks[i%len(chunks)]...)
					c.add(buf)
					i++
				}
				if c.raw > 0 {
					c.flush(c.flushStop)
				}
				b.ReportMetric(float64(c.bytesIn.Load())/float64(max(c.bytesOut.Load(), 1)), "ratio")
			})
		}
	}
}
