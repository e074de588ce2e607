package spool

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// appendBenchCases are the sync policies and record sizes of the Append
// benchmarks: 64 KiB is a compressed agent batch, 4 KiB a small relay
// request.
var appendBenchCases = []struct {
	name string
	sync time.Duration
	size int
}{
	{"sync-every/64KiB", 0, 64 << 10},
	{"sync-every/4KiB", 0, 4 << 10},
	{"sync-interval-100ms/64KiB", 100 * time.Millisecond, 64 << 10},
	{"sync-interval-100ms/4KiB", 100 * time.Millisecond, 4 << 10},
}

// openBench opens a log in a fresh directory for a benchmark and returns
// it with a payload of size bytes.
func openBench(b *testing.B, sync time.Duration, size int) (*Log, []byte) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.SyncInterval = sync
	l, err := Open(b.TempDir(), cfg, metrics.NewSet())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	return l, data
}

// BenchmarkAppend appends from one goroutine under each sync policy. Acks
// keep the log from growing without bound.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range appendBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			l, data := openBench(b, bc.sync, bc.size)
			now := time.Now()
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

// BenchmarkAppendParallel appends from 16 goroutines, as concurrent relay
// requests do, so that with sync-every they share fsyncs. ns/op is the
// wall time per record over all goroutines.
func BenchmarkAppendParallel(b *testing.B) {
	const goroutines = 16
	for _, bc := range appendBenchCases {
		b.Run(fmt.Sprintf("%s/g%d", bc.name, goroutines), func(b *testing.B) {
			l, data := openBench(b, bc.sync, bc.size)
			b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			now := time.Now()
			var n atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Append(data, now); err != nil {
						b.Error(err)
						return
					}
					if n.Add(1)%1024 == 0 {
						if err := l.Ack(math.MaxUint64); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		})
	}
}

// BenchmarkRecover measures Open on a log left by a crash: every segment is
// read and every record's checksum verified before the relay takes
// imports again. The log holds 256 MiB by default;
// PROCFLEET_BENCH_RECOVER_MIB sets another size (1024 for the 1 GiB figure
// in docs/performance.md). The page cache is warm: the log was just
// written, as after a process crash. PROCFLEET_BENCH_RECOVER_COLD=1 drops
// the page cache before each Open (root only), as after a reboot.
func BenchmarkRecover(b *testing.B) {
	mib := 256
	if v := os.Getenv("PROCFLEET_BENCH_RECOVER_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("PROCFLEET_BENCH_RECOVER_MIB=%q: want a positive number of MiB", v)
		}
		mib = n
	}
	for _, size := range []int{64 << 10, 4 << 10} {
		b.Run(fmt.Sprintf("%dMiB/records=%dKiB", mib, size>>10), func(b *testing.B) {
			dir := b.TempDir()
			cfg := DefaultConfig()
			cfg.SyncInterval = time.Second
			l, err := Open(dir, cfg, metrics.NewSet())
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7)
			}
			records := (mib << 20) / (size + headerSize)
			for range records {
				if err := l.Append(data, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(mib) << 20)
			b.ResetTimer()
			cold := os.Getenv("PROCFLEET_BENCH_RECOVER_COLD") == "1"
			for b.Loop() {
				if cold {
					b.StopTimer()
					syscall.Sync()
					if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644); err != nil {
						b.Fatalf("cannot drop the page cache (root needed): %v", err)
					}
					b.StartTimer()
				}
				l, err := Open(dir, cfg, metrics.NewSet())
				if err != nil {
					b.Fatal(err)
				}
				if l.Len() != records {
					b.Fatalf("recovered %d records; want %d", l.Len(), records)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendVec appends a 4 MiB payload held in 64 KiB pieces, as the
// relay stores a large import body read in chunks, with a 100 ms sync
// interval so that the write, not the fsync, is measured.
func BenchmarkAppendVec(b *testing.B) {
	l, data := openBench(b, 100*time.Millisecond, 4<<20)
	pieces := make([][]byte, 0, len(data)/(64<<10))
	for off := 0; off < len(data); off += 64 << 10 {
		pieces = append(pieces, data[off:off+64<<10])
	}
	now := time.Now()
	var n uint64
	for b.Loop() {
		if err := l.AppendVec(pieces, now); err != nil {
			b.Fatal(err)
		}
		n++
		if err := l.Ack(n); err != nil {
			b.Fatal(err)
		}
	}
}
