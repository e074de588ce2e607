package compress

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
)

// BenchmarkCompressor measures the compressor's throughput on text shaped
// like the agent's output (MB/s of uncompressed input).
func BenchmarkCompressor(b *testing.B) {
	for _, level := range []int{1, 5, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var chunk []byte
			for i := 0; len(chunk) < emit.BufferSize-emit.FlushMargin; i++ {
				chunk = fmt.Appendf(chunk, "proc_pid_cpu_seconds_total{pid=\"%d\",mode=\"user\"} %d.%02d 1700000000000\n", 1000+i, i*7, i%100)
			}
			pool := emit.NewPool(4)
			cfg := config.Compress{Level: level, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Minute)}
			c, err := New(cfg, pool, func(Batch) {}, metrics.NewSet())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ := pool.Get(context.Background())
				buf.B = append(buf.B, chunk...)
				c.add(buf)
			}
			b.ReportMetric(float64(c.bytesIn.Load())/float64(max(c.bytesOut.Load(), 1)), "ratio")
		})
	}
}
