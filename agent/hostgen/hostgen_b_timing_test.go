package hostgen

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// netBenchSink drops every buffer, so that benchmarks measure generating.
type netBenchSink struct{ pool *emit.Pool }

func (d netBenchSink) Send(_ context.Context, b *emit.Buffer) error {
	d.pool.Put(b)
	return nil
}

// netBenchFixture is the fixture proc tree of the repository, or the tree
// named by $HOSTGEN_BENCH_PROC (for example /proc, to weigh the generators
// against the cost of reading the live kernel files).
func netBenchFixture(b *testing.B) string {
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

// netBenchFiles returns the absolute paths of files under root and their
// total size, for b.SetBytes.
func netBenchFiles(b *testing.B, root string, rel []string) ([]string, int64) {
	b.Helper()
	var paths []string
	var size int64
	for _, r := range rel {
		p := filepath.Join(root, r)
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
		size += int64(len(data))
	}
	return paths, size
}

// benchGenerator measures Collect in steady state: a Tracker that has seen
// the input before, so most series are unchanged.
func benchGenerator(b *testing.B, g emit.Generator, rel []string) {
	b.Helper()
	_, size := netBenchFiles(b, netBenchFixture(b), rel)
	pool := emit.NewPool(4)
	s := emit.NewScan(pool, netBenchSink{pool}, emit.NewTracker(10))
	ctx := context.Background()
	ts := int64(1_700_000_000_000)
	run := func() {
		ts += 1000
		s.Start(ctx, ts)
		if err := g.Collect(s); err != nil {
			b.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	for range 3 {
		run()
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
}

// benchReadFloor measures only reading the same files the way the
// generators read them (ReadFullZ), the floor any generator of them pays.
func benchReadFloor(b *testing.B, rel []string) {
	b.Helper()
	paths, size := netBenchFiles(b, netBenchFixture(b), rel)
	var pathzs [][]byte
	for _, p := range paths {
		pathzs = append(pathzs, pathZ(p))
	}
	r := procfile.NewReader(8 << 10)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, p := range pathzs {
			if _, err := r.ReadFullZ(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

var (
	netdevFiles    = []string{"net/dev"}
	netstatFiles3  = []string{"net/netstat", "net/snmp", "net/snmp6"}
	diskstatsFiles = []string{"diskstats"}
	sockstatFiles  = []string{"net/sockstat", "net/sockstat6"}
)

func BenchmarkGeneratorNetdev(b *testing.B) {
	benchGenerator(b, NewNetdev(Options{ProcRoot: netBenchFixture(b)}), netdevFiles)
}

func BenchmarkReadFloorNetdev(b *testing.B) { benchReadFloor(b, netdevFiles) }

func BenchmarkGeneratorNetstat(b *testing.B) {
	benchGenerator(b, NewNetstat(Options{ProcRoot: netBenchFixture(b)}), netstatFiles3)
}

func BenchmarkReadFloorNetstat(b *testing.B) { benchReadFloor(b, netstatFiles3) }

func BenchmarkGeneratorDiskstats(b *testing.B) {
	benchGenerator(b, NewDiskstats(Options{ProcRoot: netBenchFixture(b)}), diskstatsFiles)
}

func BenchmarkReadFloorDiskstats(b *testing.B) { benchReadFloor(b, diskstatsFiles) }

func BenchmarkGeneratorSockstat(b *testing.B) {
	benchGenerator(b, NewSockstat(Options{ProcRoot: netBenchFixture(b)}), sockstatFiles)
}

func BenchmarkReadFloorSockstat(b *testing.B) { benchReadFloor(b, sockstatFiles) }
