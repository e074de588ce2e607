package hostgen

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// benchGenerators are the host generators with the files each reads.
var benchGenerators = []struct {
	name  string
	files []string
	build func(Options) emit.Generator
	// procfs parses the same files with github.com/prometheus/procfs, for
	// comparison; nil where procfs has no parser for the source.
	procfs func(procfs.FS) error
}{
	{"stat", []string{"stat"}, func(o Options) emit.Generator { return NewStat(o) },
		func(fs procfs.FS) error { _, err := fs.Stat(); return err }},
	{"meminfo", []string{"meminfo"}, func(o Options) emit.Generator { return NewMeminfo(o) },
		func(fs procfs.FS) error { _, err := fs.Meminfo(); return err }},
	{"loadavg", []string{"loadavg"}, func(o Options) emit.Generator { return NewLoadavg(o) },
		func(fs procfs.FS) error { _, err := fs.LoadAvg(); return err }},
	{"vmstat", []string{"vmstat"}, func(o Options) emit.Generator { return NewVmstat(o) }, nil},
	{"netdev", []string{"net/dev"}, func(o Options) emit.Generator { return NewNetdev(o) },
		func(fs procfs.FS) error { _, err := fs.NetDev(); return err }},
	{"netstat", []string{"net/netstat", "net/snmp", "net/snmp6"}, func(o Options) emit.Generator { return NewNetstat(o) }, nil},
	{"diskstats", []string{"diskstats"}, func(o Options) emit.Generator { return NewDiskstats(o) }, nil},
	{"sockstat", []string{"net/sockstat", "net/sockstat6"}, func(o Options) emit.Generator { return NewSockstat(o) },
		func(fs procfs.FS) error {
			if _, err := fs.NetSockstat(); err != nil {
				return err
			}
			_, err := fs.NetSockstat6()
			return err
		}},
	{"filefd", []string{"sys/fs/file-nr"}, func(o Options) emit.Generator { return NewFilefd(o) }, nil},
	{"pressure", []string{"pressure/cpu", "pressure/io", "pressure/memory"}, func(o Options) emit.Generator { return NewPressure(o) },
		func(fs procfs.FS) error {
			for _, r := range []string{"cpu", "io", "memory"} {
				if _, err := fs.PSIStatsForResource(r); err != nil {
					return err
				}
			}
			return nil
		}},
	{"interrupts", []string{"interrupts"}, func(o Options) emit.Generator { return NewInterrupts(o) }, nil},
	{"softirqs", []string{"softirqs"}, func(o Options) emit.Generator { return NewSoftirqs(o) },
		func(fs procfs.FS) error { _, err := fs.Softirqs(); return err }},
}

// benchRoot is the repository's fixture tree, or the tree named by
// $HOSTGEN_BENCH_PROC (HOSTGEN_BENCH_PROC=/proc weighs the generators
// against reading the live kernel files, where the kernel formats the text
// on every read).
func benchRoot(b *testing.B) string {
	b.Helper()
	if dir := os.Getenv("HOSTGEN_BENCH_PROC"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchFiles returns the NUL-terminated paths of files under root and
// their total size, for b.SetBytes.
func benchFiles(b *testing.B, root string, rel []string) ([][]byte, int64) {
	b.Helper()
	var paths [][]byte
	var size int64
	for _, r := range rel {
		p := filepath.Join(root, r)
		data, err := os.ReadFile(p)
		if err != nil {
			b.Skipf("%s: %v", p, err)
		}
		paths = append(paths, append([]byte(p), 0))
		size += int64(len(data))
	}
	return paths, size
}

// discardSink hands buffers straight back to the pool, so that benchmarks
// measure generating only.
type discardSink struct{ pool *emit.Pool }

func (d discardSink) Send(_ context.Context, b *emit.Buffer) error {
	d.pool.Put(b)
	return nil
}

// BenchmarkGenerator measures one Collect in steady state: a tracker that
// has seen the series before, full refresh every 10 cycles.
func BenchmarkGenerator(b *testing.B) {
	for _, bg := range benchGenerators {
		b.Run(bg.name, func(b *testing.B) {
			root := benchRoot(b)
			_, size := benchFiles(b, root, bg.files)
			g := bg.build(Options{ProcRoot: root})
			pool := emit.NewPool(4)
			s := emit.NewScan(pool, discardSink{pool}, emit.NewTracker(10))
			ctx := context.Background()
			ts := int64(1_700_000_000_000)
			run := func() {
				ts += 1000
				s.Start(ctx, ts)
				_ = g.Collect(s) // fixture quirks may report errors; the cost is what counts
				if err := s.Finish(); err != nil {
					b.Fatal(err)
				}
			}
			for range 20 {
				run()
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
		})
	}
}

// BenchmarkReadFloor measures only reading the same files the way the
// generators read them: the floor any generator of them pays.
func BenchmarkReadFloor(b *testing.B) {
	for _, bg := range benchGenerators {
		b.Run(bg.name, func(b *testing.B) {
			paths, size := benchFiles(b, benchRoot(b), bg.files)
			r := procfile.NewReader(64 << 10)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, p := range paths {
					if _, err := r.ReadFullZ(p); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkProcfs measures reading and parsing the same files with
// github.com/prometheus/procfs, which node_exporter uses: the cost the
// generators' own parsers avoid (see docs/design/agent.md, "Our own
// parsers, procfs as the oracle").
func BenchmarkProcfs(b *testing.B) {
	for _, bg := range benchGenerators {
		if bg.procfs == nil {
			continue
		}
		b.Run(bg.name, func(b *testing.B) {
			root := benchRoot(b)
			_, size := benchFiles(b, root, bg.files)
			fs, err := procfs.NewFS(root)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := bg.procfs(fs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
