package spool

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// BenchmarkAppend appends 64 KiB records, the size of a compressed batch,
// under each sync policy. Acks keep the log from growing without bound.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync time.Duration
	}{
		{"sync-every", 0},
		{"sync-interval-100ms", 100 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.SyncInterval = bc.sync
			l, err := Open(b.TempDir(), cfg, metrics.NewSet())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			data := make([]byte, 64<<10)
			for i := range data {
				data[i] = byte(i * 7)
			}
			now := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var n uint64
			for b.Loop() {
				if err := l.Append(data, now); err != nil {
					b.Fatal(err)
				}
				if n++; n%1024 == 0 {
					if err := l.Ack(n); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
