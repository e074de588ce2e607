package procgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// benchProcs is the size of the synthetic process tree: the target
// is a scan of 10,000 processes every second under 10% of one core.
const benchProcs = 10000

var synth struct {
	once sync.Once
	root string
	err  error
}

// synthTree returns a procfs root with benchProcs processes whose files
// look like a real host's (a 52-field stat, a 55-line status, io, a
// cmdline), built once per test binary and removed by TestMain.
func synthTree(b *testing.B) string {
	b.Helper()
	synth.once.Do(func() {
		synth.root, synth.err = os.MkdirTemp("", "procgen-bench-")
		if synth.err != nil {
			return
		}
		synth.err = writeSynth(synth.root, benchProcs)
	})
	if synth.err != nil {
		b.Fatal(synth.err)
	}
	return synth.root
}

func writeSynth(root string, n int) error {
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  1 2 3 4\nbtime 1700000000\n"), 0o644); err != nil {
		return err
	}
	comms := []string{"bash", "nginx: worker", "kworker/3:1-events", "postgres", "java", "(sd-pam)", "python3", "sshd"}
	for i := 0; i < n; i++ {
		pid := 1000 + i*3
		comm := comms[i%len(comms)]
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		stat := fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194560 %d 0 %d 0 %d %d 0 0 20 0 %d 0 %d %d %d "+
			"18446744073709551615 94000000000000 94000000100000 140000000000000 0 0 0 0 4096 134234626 0 0 0 17 %d 0 0 0 0 0 "+
			"94000000200000 94000000300000 94000001000000 140000000001000 140000000001100 140000000001100 140000000002000 0\n",
			pid, comm, pid, pid, 123456+i, i%50, 98765+i, 43210+i, 1+i%40, 500000+i, 1<<30+i*4096, 20000+i, i%4)
		status := statusText(comm, uint64(i%3*1000), uint64(100000+i), uint64(i))
		status = strings.Replace(status, "VmRSS:\t    11000 kB\n", realisticStatusMiddle, 1)
		files := map[string]string{
			"stat":    stat,
			"status":  status,
			"io":      fmt.Sprintf("rchar: %d\nwchar: %d\nsyscr: 1234\nsyscw: 567\nread_bytes: %d\nwrite_bytes: %d\ncancelled_write_bytes: 0\n", i*7, i*5, i*4096, i*8192),
			"cmdline": "/usr/bin/" + comm + "\x00--config\x00/etc/" + comm + "/" + comm + ".conf\x00--verbose\x00",
		}
		for name, c := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// realisticStatusMiddle pads the status file to the ~55 lines of a real one.
const realisticStatusMiddle = "Tgid:\t1\nNgid:\t0\nPid:\t1\nTracerPid:\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\n" +
	"NStgid:\t1\nNSpid:\t1\nNSpgid:\t1\nNSsid:\t1\nVmPeak:\t  170000 kB\nVmSize:\t  168000 kB\nVmLck:\t       0 kB\n" +
	"VmPin:\t       0 kB\nVmHWM:\t   12000 kB\nVmRSS:\t   11000 kB\nRssAnon:\t    3000 kB\nRssFile:\t    8000 kB\n" +
	"RssShmem:\t       0 kB\nVmData:\t   20000 kB\nVmStk:\t     132 kB\nVmExe:\t     900 kB\nVmLib:\t   10000 kB\n" +
	"VmPTE:\t     100 kB\nVmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\nCoreDumping:\t0\nTHP_enabled:\t1\n" +
	"SigQ:\t0/63965\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n" +
	"SigIgn:\t0000000000001000\nSigCgt:\t00000001800004ec\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n" +
	"CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n" +
	"Seccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\nCpus_allowed:\tf\nCpus_allowed_list:\t0-3\n" +
	"Mems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\n"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(threadHelperEnv)); err == nil {
		threadHelper(n) // a child of BenchmarkThreadsRealIdle: never returns
	}
	code := m.Run()
	killIdle()
	killThreads()
	if synth.root != "" {
		os.RemoveAll(synth.root)
	}
	os.Exit(code)
}

// discardSink hands every buffer straight back to its pool.
type discardSink struct{ pool *emit.Pool }

func (d discardSink) Send(_ context.Context, b *emit.Buffer) error {
	d.pool.Put(b)
	return nil
}

// benchScan returns a func that runs one scan of g into a tracker that
// refreshes every fullEvery cycles, its lines discarded.
func benchScan(b *testing.B, g *Generator, fullEvery int) func() {
	pool := emit.NewPool(8)
	scan := emit.NewScan(pool, discardSink{pool}, emit.NewTracker(fullEvery))
	ctx := context.Background()
	return func() {
		scan.Start(ctx, 1700000000000)
		if err := g.Collect(scan); err != nil {
			b.Fatal(err)
		}
		if err := scan.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCollect runs g against a tracker refreshing every fullEvery cycles
// and reports the cost per process and as a share of one core for a scan
// of 10,000 processes every second.
func benchCollect(b *testing.B, g *Generator, fullEvery int) {
	b.Helper()
	run := benchScan(b, g, fullEvery)
	run() // first scan: new processes, cmdline reads, tracker entries
	run()
	n := g.Tracked()
	b.ReportAllocs()
	cpu := cpuPerRun(b, run)
	nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(nsPerOp/float64(n), "ns/process")
	// CPU time (user+system, whole test process) rather than wall time: on
	// a busy machine wall time counts the waits for a CPU as well.
	b.ReportMetric(cpu/float64(n), "cpu-ns/process")
	// Share of one core for 10,000 processes scanned once a second.
	b.ReportMetric(cpu/float64(n)*benchProcs/1e9*100, "%core@10k/s")
	b.ReportMetric(float64(n), "processes")
}

// cpuPerRun resets b's timer, calls run b.N times and returns the CPU time
// (user+system, whole test process) per call in nanoseconds, with the
// timer stopped.
func cpuPerRun(b *testing.B, run func()) float64 {
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		run()
	}
	cpu := float64(cpuTime()-cpu0) / float64(b.N)
	b.StopTimer()
	return cpu
}

// threadCPUTime returns the user+system CPU time of the calling thread in
// nanoseconds.
func threadCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuTime returns the user+system CPU time of the process in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkProcessGenerator scans the synthetic 10,000-process tree in
// steady state: nothing changes between scans, so the tracker writes only
// the 1/60 of series whose refresh is due.
func BenchmarkProcessGenerator(b *testing.B) {
	root := synthTree(b)
	b.Run("fullEvery=60", func(b *testing.B) { benchCollect(b, New(Options{ProcRoot: root}), 60) })
	b.Run("fullEvery=1", func(b *testing.B) { benchCollect(b, New(Options{ProcRoot: root}), 1) })
}

// BenchmarkProcessReadFloor lists the synthetic tree and reads the same
// files as the generator, parsing and writing nothing: what the kernel and
// the file system cost.
func BenchmarkProcessReadFloor(b *testing.B) {
	root := synthTree(b)
	g := New(Options{ProcRoot: root})
	r := procfile.NewReader(4096)
	b.ReportAllocs()
	cpu := cpuPerRun(b, func() { readFloor(b, g, r, root) })
	nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(nsPerOp/benchProcs, "ns/process")
	b.ReportMetric(cpu/benchProcs, "cpu-ns/process")
	b.ReportMetric(cpu/1e9*100, "%core@10k/s")
}

func readFloor(b *testing.B, g *Generator, r *procfile.Reader, root string) {
	path := append(g.path[:0], root...)
	if err := g.dir.open(append(path, 0)); err != nil {
		b.Fatal(err)
	}
	defer g.dir.close()
	for {
		name, err := g.dir.next()
		if err != nil {
			b.Fatal(err)
		}
		if name == nil {
			return
		}
		if _, ok := parsePID(name); !ok {
			continue
		}
		path = append(append(append(path[:0], root...), '/'), name...)
		base := len(path)
		for _, f := range []string{"/stat\x00", "/status\x00", "/io\x00"} {
			path = append(path[:base], f...)
			if _, err := r.ReadZ(path, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkProcessGeneratorRealProc scans this machine's /proc.
func BenchmarkProcessGeneratorRealProc(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("no /proc")
	}
	// Each generator gives its kept descriptors back: the benchmarks after
	// this one need the open files limit too.
	gen := func(b *testing.B, o Options) *Generator {
		g := New(o)
		b.Cleanup(func() { _ = g.Close() })
		return g
	}
	b.Run("threads=false", func(b *testing.B) { benchCollect(b, gen(b, Options{}), 60) })
	// Kernel threads' stat read every scan (as before kthreadStill), and
	// left unread as when loadavg counts the generator alone as runnable
	// (this shared machine's load average seldom lets a scan see that).
	b.Run("threads=false/kthreads=read", func(b *testing.B) {
		g := gen(b, Options{})
		g.noKCarry = true
		benchCollect(b, g, 60)
	})
	b.Run("threads=false/kthreads=sole", func(b *testing.B) {
		g := gen(b, Options{})
		g.soleRun = true
		benchCollect(b, g, 60)
		b.ReportMetric(float64(g.SkippedStats())/float64(g.cycle), "stat-skipped/scan")
	})
	b.Run("threads=true", func(b *testing.B) { benchCollect(b, gen(b, Options{Threads: true}), 60) })
	// The same without kept descriptors: every file opened and closed.
	b.Run("threads=false/reopen", func(b *testing.B) {
		g := gen(b, Options{})
		g.fdMax = 0
		benchCollect(b, g, 60)
	})
}

// BenchmarkProcessGeneratorPaced scans this machine's /proc once a second,
// as the agent does, so that each scan finds the kernel's and the
// generator's data cold, and reports the CPU of a scan (the scanning
// thread, the sleeps in between not counted). Run it with a fixed count
// of scans: -benchtime 20x. kthreads=read reads every stat (as before
// kthreadStill and userStill; the name is older than userStill);
// kthreads=sole leaves an idle kernel thread's or user process's unread,
// as when loadavg counts the generator alone as runnable; default is the
// generator as the agent runs it.
func BenchmarkProcessGeneratorPaced(b *testing.B) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		b.Skip("no /proc/self/schedstat")
	}
	f := func(noKCarry, sole bool) func(b *testing.B) {
		return func(b *testing.B) {
			// The scan's own CPU: its goroutine stays on this thread.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			g := New(Options{})
			b.Cleanup(func() { _ = g.Close() })
			g.noKCarry, g.soleRun = noKCarry, sole
			run := benchScan(b, g, 60)
			run()
			time.Sleep(time.Second)
			run()
			skipped0, cycle0 := g.SkippedStats(), g.cycle
			var cpu int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Second)
				c0 := threadCPUTime()
				run()
				cpu += threadCPUTime() - c0
			}
			b.StopTimer()
			n := float64(g.Tracked())
			b.ReportMetric(float64(cpu)/float64(b.N)/1000, "cpu-µs/scan")
			b.ReportMetric(float64(cpu)/float64(b.N)/n, "cpu-ns/process")
			b.ReportMetric(n, "processes")
			b.ReportMetric(float64(g.SkippedStats()-skipped0)/float64(g.cycle-cycle0), "stat-skipped/scan")
		}
	}
	b.Run("kthreads=read", f(true, false))
	b.Run("kthreads=sole", f(false, true))
	b.Run("default", f(false, false))
}

// BenchmarkProcessMemory reports the heap the generator's per-process
// state takes, and what the tracker adds for the same processes.
func BenchmarkProcessMemory(b *testing.B) {
	root := synthTree(b)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var genBytes, trkBytes float64
	for i := 0; i < b.N; i++ {
		pool := emit.NewPool(8)
		base := heap()
		g := New(Options{ProcRoot: root})
		s := emit.NewScan(pool, discardSink{pool}, nil)
		s.Start(context.Background(), 0)
		if err := g.Collect(s); err != nil {
			b.Fatal(err)
		}
		_ = s.Finish()
		afterGen := heap()
		tr := emit.NewTracker(60)
		s = emit.NewScan(pool, discardSink{pool}, tr)
		s.Start(context.Background(), 0)
		if err := g.Collect(s); err != nil {
			b.Fatal(err)
		}
		_ = s.Finish()
		afterTrk := heap()
		genBytes = float64(afterGen-base) / float64(g.Tracked())
		trkBytes = float64(afterTrk-afterGen) / float64(g.Tracked())
		runtime.KeepAlive(g)
		runtime.KeepAlive(tr)
	}
	b.ReportMetric(genBytes, "B/process(generator)")
	b.ReportMetric(trkBytes, "B/process(tracker)")
}

func BenchmarkParseStat(b *testing.B) {
	data := []byte(statLine(12345, "nginx: worker", 'S', 1, 98765, 43210, 500000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseStat(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatus(b *testing.B) {
	data := []byte(strings.Replace(statusText("nginx", 1000, 100000, 12), "VmRSS:\t    11000 kB\n", realisticStatusMiddle, 1))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseStatus(data); err != nil {
			b.Fatal(err)
		}
	}
}
