package ship

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// BenchmarkWindowKeep measures what the redelivery window adds per
// delivered batch: keeping it and letting the oldest go, in the steady
// state of an agent (a 32 KiB batch every second against a 10s window,
// so about ten batches kept).
func BenchmarkWindowKeep(b *testing.B) {
	w := newWindow(10*time.Second, 8<<20, metrics.NewSet())
	ep := &endpoint{}
	body := make([]byte, 32<<10)
	at := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		at = at.Add(time.Second)
		w.add(kept{ep: ep, at: at, size: int64(len(body)), n: 1, batch: &Batch{Body: body}})
	}
}

// BenchmarkWindowTake measures making an upstream's window pending and
// sending it again from memory (pops only: no request).
func BenchmarkWindowTake(b *testing.B) {
	w := newWindow(10*time.Second, 8<<20, metrics.NewSet())
	ep := &endpoint{}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for range 10 {
			at = at.Add(time.Second / 10)
			w.add(kept{ep: ep, at: at, size: 1, n: 1})
		}
		w.take(ep)
		for {
			if _, ok := w.popPending(); !ok {
				break
			}
		}
	}
}
