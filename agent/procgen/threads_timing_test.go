package procgen

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Threads of BenchmarkThreadsRealIdle: the 10,000 idle threads,
// held by threadHelpers processes (a few large thread pools, as a host
// with a JVM or two has them).
const (
	idleThreads   = 10000
	threadHelpers = 4
)

// threadHelperEnv makes the test binary a helper process holding that
// many idle threads (see TestMain).
const threadHelperEnv = "PROCGEN_THREAD_HELPER"

// threadHelper holds n OS threads, each parked in a goroutine locked to it,
// prints "ready" and their TIDs once all exist, then obeys the lines of
// its stdin until it ends, and waits to be killed: "+k" adds k such
// threads, "-k" ends the last k of them (a goroutine that returns locked
// to its thread ends the thread), each answered with "ready" and the
// TIDs of the threads started or told to end.
func threadHelper(n int) {
	debug.SetMaxThreads(n + 1000)
	type parked struct {
		tid  int
		quit chan struct{}
	}
	var pool []parked
	spawn := func(k int) []parked {
		tids := make(chan parked)
		for range k {
			go func() {
				runtime.LockOSThread()
				p := parked{syscall.Gettid(), make(chan struct{})}
				tids <- p
				<-p.quit
			}()
		}
		var ps []parked
		for range k {
			ps = append(ps, <-tids)
		}
		return ps
	}
	answer := func(ps []parked) {
		line := []byte("ready")
		for _, p := range ps {
			line = strconv.AppendInt(append(line, ' '), int64(p.tid), 10)
		}
		fmt.Println(string(line))
	}
	pool = spawn(n)
	answer(pool)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		k, err := strconv.Atoi(in.Text())
		switch {
		case err != nil:
			fmt.Println("bad command", in.Text())
		case k > 0:
			ps := spawn(k)
			pool = append(pool, ps...)
			answer(ps)
		default:
			k = min(-k, len(pool))
			ps := pool[len(pool)-k:]
			pool = pool[:len(pool)-k]
			for _, p := range ps {
				close(p.quit)
			}
			answer(ps)
		}
	}
	for {
		time.Sleep(time.Hour) // a timer: the runtime sees no deadlock
	}
}

var threadPool struct {
	once sync.Once
	cmds []*exec.Cmd
	skip string
	err  error
}

// spawnThreads starts the helpers, or skips b when the machine cannot
// hold their threads.
func spawnThreads(b *testing.B) {
	b.Helper()
	threadPool.once.Do(func() {
		if threadPool.skip = taskRoom(idleThreads); threadPool.skip != "" {
			return
		}
		for i := range threadHelpers {
			n := idleThreads / threadHelpers
			c := exec.Command(os.Args[0])
			c.Env = append(os.Environ(), threadHelperEnv+"="+strconv.Itoa(n))
			c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			out, err := c.StdoutPipe()
			if err == nil {
				err = c.Start()
			}
			if err != nil {
				threadPool.err = fmt.Errorf("cannot start thread helper %d: %w", i+1, err)
				return
			}
			threadPool.cmds = append(threadPool.cmds, c)
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "ready ") {
				threadPool.err = fmt.Errorf("thread helper %d: read %q, %v; want ready", i+1, line, err)
				return
			}
		}
	})
	if threadPool.skip != "" {
		b.Skip(threadPool.skip)
	}
	if threadPool.err != nil {
		b.Fatal(threadPool.err)
	}
}

// killThreads kills and reaps the helpers.
func killThreads() {
	for _, c := range threadPool.cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	threadPool.cmds = nil
}

// taskRoom says why n more tasks do not fit, or "".
func taskRoom(n int64) string {
	readInt := func(path string) int64 {
		b, _ := os.ReadFile(path)
		v, _ := strconv.ParseInt(string(trimSpace(b)), 10, 64)
		return v
	}
	la, _ := os.ReadFile("/proc/loadavg")
	_, tasks, _, _ := parseLoadavgPIDs(la)
	need := tasks + n + 1000
	if pm := readInt("/proc/sys/kernel/pid_max"); pm < need {
		return fmt.Sprintf("kernel.pid_max is %d; %d tasks run and %d more are needed", pm, tasks, n)
	}
	if tm := readInt("/proc/sys/kernel/threads-max"); tm < need {
		return fmt.Sprintf("kernel.threads-max is %d; %d tasks run and %d more are needed", tm, tasks, n)
	}
	var rl syscall.Rlimit
	if os.Geteuid() != 0 && syscall.Getrlimit(6 /* RLIMIT_NPROC */, &rl) == nil && int64(rl.Cur) < need {
		return fmt.Sprintf("RLIMIT_NPROC is %d; %d tasks run and %d more are needed", rl.Cur, tasks, n)
	}
	return ""
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// BenchmarkThreadsRealIdle scans this machine's /proc with threads on and
// 10,000 more idle threads in it (threadHelpers processes), in steady
// state: fds=default is the generator as an installed agent runs it
// (half the open files limit for kept descriptors), fds=limit lets it
// keep descriptors up to the limit less a margin. ns/op is one scan of
// the whole host; cpu-us/thread is the CPU time of a scan (user+system,
// whole test process) over the threads scanned.
func BenchmarkThreadsRealIdle(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("no /proc/self/task")
	}
	spawnThreads(b)
	f := func(fdLimit bool) func(b *testing.B) {
		return func(b *testing.B) {
			g := New(Options{Threads: true})
			b.Cleanup(func() { _ = g.Close() })
			if fdLimit {
				g.fdMax = fdsLeft(b)
			}
			run := benchScan(b, g, 60)
			// New threads, then the gate's basis, then the descriptors
			// spread by the budget.
			for range 4 {
				run()
			}
			n := g.TrackedThreads()
			st0, c0, l0, _ := g.ThreadCounts()
			sk0 := g.SkippedStats()
			b.ReportAllocs()
			cpu := cpuPerRun(b, run)
			st, c, l, _ := g.ThreadCounts()
			b.ReportMetric(float64(g.SkippedStats()-sk0)/float64(b.N)/float64(n), "stat-skipped/thread")
			per := func(v uint64) float64 { return float64(v) / float64(b.N) / float64(n) }
			b.ReportMetric(per(st-st0), "status-skipped/thread")
			b.ReportMetric(per(c-c0), "carried/thread")
			b.ReportMetric(float64(l-l0)/float64(b.N), "task-listings/scan")
			b.ReportMetric(float64(g.threadKept)/float64(n), "kept-fds/thread")
			b.ReportMetric(cpu/1e3/float64(n), "cpu-us/thread")
			b.ReportMetric(cpu/1e9*100, "%core-at-1s")
			b.ReportMetric(float64(n), "threads")
			b.ReportMetric(float64(g.Tracked()), "processes")
		}
	}
	b.Run("fds=default", f(false))
	b.Run("fds=limit", f(true))
}
