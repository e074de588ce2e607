package limit

import (
	"context"
	"testing"

	"github.com/procfleet/procfleet/config"
)

func BenchmarkWaitUnlimited(b *testing.B) {
	l := New(config.Limit{}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(64 << 10)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Wait(ctx, 64<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWaitLimitedFast measures the limited path when credit suffices:
// the rate is far above what the loop can take.
func BenchmarkWaitLimitedFast(b *testing.B) {
	l := New(config.Limit{BytesPerSecond: 1 << 50, Burst: 1 << 50}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(64 << 10)
	for b.Loop() {
		if err := l.Wait(ctx, 64<<10); err != nil {
			b.Fatal(err)
		}
	}
}
