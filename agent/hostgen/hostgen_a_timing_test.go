package hostgen

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
	"github.com/procfleet/procfleet/internal/testenv"
)

// benchARoot is the repository's fixture tree.
func benchARoot(b *testing.B) string {
	b.Helper()
	return filepath.Join(testenv.RepoRoot(b), "testdata", "fixtures", "proc")
}

// benchAFiles are the files each generator reads, relative to the root.
var benchAFiles = map[string][]string{
	"stat":       {"stat"},
	"meminfo":    {"meminfo"},
	"loadavg":    {"loadavg"},
	"vmstat":     {"vmstat"},
	"filefd":     {"sys/fs/file-nr"},
	"pressure":   {"pressure/cpu", "pressure/io", "pressure/memory", "pressure/irq"},
	"interrupts": {"interrupts"},
	"softirqs":   {"softirqs"},
}

// discardASink hands buffers straight back to the pool.
type discardASink struct{ pool *emit.Pool }

func (d discardASink) Send(_ context.Context, b *emit.Buffer) error {
	b.B = b.B[:0]
	d.pool.Put(b)
	return nil
}

// benchAGenerator measures one Collect in steady state: a tracker that has
// seen the series, full refresh every 10 cycles.
func benchAGenerator(b *testing.B, g emit.Generator) {
	b.Helper()
	root := benchARoot(b)
	size := 0
	r := procfile.NewReader(64 << 10)
	for _, f := range benchAFiles[g.Name()] {
		data, _ := r.Read(filepath.Join(root, f))
		size += len(data)
	}
	pool := emit.NewPool(4)
	s := emit.NewScan(pool, discardASink{pool}, emit.NewTracker(10))
	ctx := context.Background()
	run := func(ts int64) {
		s.Start(ctx, ts)
		if err := g.Collect(s); err != nil {
			b.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		run(int64(i + 1))
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(int64(i + 100))
	}
}

// benchAReadFloor measures only reading the generator's files, with the
// same zero-allocation read (ReadZ) the generators use.
func benchAReadFloor(b *testing.B, name string) {
	b.Helper()
	root := benchARoot(b)
	var paths []string
	for _, f := range benchAFiles[name] {
		paths = append(paths, filepath.Join(root, f))
	}
	r := procfile.NewReader(64 << 10)
	size := 0
	var pathz [][]byte
	for _, p := range paths {
		data, _ := r.Read(p)
		size += len(data)
		pathz = append(pathz, zpath(p))
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, p := range pathz {
			_, _ = r.ReadZ(p, 0)
		}
	}
}

func BenchmarkGeneratorStat(b *testing.B) {
	benchAGenerator(b, NewStat(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorStat(b *testing.B) { benchAReadFloor(b, "stat") }
func BenchmarkGeneratorMeminfo(b *testing.B) {
	benchAGenerator(b, NewMeminfo(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorMeminfo(b *testing.B) { benchAReadFloor(b, "meminfo") }
func BenchmarkGeneratorLoadavg(b *testing.B) {
	benchAGenerator(b, NewLoadavg(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorLoadavg(b *testing.B) { benchAReadFloor(b, "loadavg") }
func BenchmarkGeneratorVmstat(b *testing.B) {
	benchAGenerator(b, NewVmstat(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorVmstat(b *testing.B) { benchAReadFloor(b, "vmstat") }
func BenchmarkGeneratorFilefd(b *testing.B) {
	benchAGenerator(b, NewFilefd(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorFilefd(b *testing.B) { benchAReadFloor(b, "filefd") }
func BenchmarkGeneratorPressure(b *testing.B) {
	benchAGenerator(b, NewPressure(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorPressure(b *testing.B) { benchAReadFloor(b, "pressure") }
func BenchmarkGeneratorInterrupts(b *testing.B) {
	benchAGenerator(b, NewInterrupts(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorInterrupts(b *testing.B) { benchAReadFloor(b, "interrupts") }
func BenchmarkGeneratorSoftirqs(b *testing.B) {
	benchAGenerator(b, NewSoftirqs(Options{ProcRoot: benchARoot(b)}))
}
func BenchmarkReadFloorSoftirqs(b *testing.B) { benchAReadFloor(b, "softirqs") }
