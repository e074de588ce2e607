package procgen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// idleProcs is how many real idle processes BenchmarkProcessGeneratorRealIdle
// adds to the host: the 10,000 processes scanned every second.
const idleProcs = 10000

// idle holds the sleeping children, started once per test binary (not per
// -count) and killed by TestMain. The file name sorts after
// procgen_timing_test.go so that BenchmarkProcessGeneratorRealProc runs
// before they exist.
var idle struct {
	once sync.Once
	pids []int
	skip string
	err  error
}

// spawnIdle starts idleProcs `sleep 3600` children, or skips b when the
// machine cannot hold them.
func spawnIdle(b *testing.B) {
	b.Helper()
	idle.once.Do(func() {
		if idle.skip = idleRoom(); idle.skip != "" {
			return
		}
		for i := 0; i < idleProcs; i++ {
			c := exec.Command("sleep", "3600")
			// Should the test binary die before TestMain kills them.
			c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := c.Start(); err != nil {
				idle.err = fmt.Errorf("cannot start idle process %d of %d: %w", i+1, idleProcs, err)
				return
			}
			// os.Process holds a pidfd per child: 10,000 descriptors
			// taken from the generator's budget. Release it and keep the
			// PID, a child of ours until killIdle reaps it.
			idle.pids = append(idle.pids, c.Process.Pid)
			_ = c.Process.Release()
		}
	})
	if idle.skip != "" {
		b.Skip(idle.skip)
	}
	if idle.err != nil {
		b.Fatal(idle.err)
	}
}

// idleRoom says why idleProcs more processes do not fit, or "".
func idleRoom() string {
	if _, err := exec.LookPath("sleep"); err != nil {
		return "no sleep command to spawn idle processes with"
	}
	readInt := func(path string) int64 {
		b, _ := os.ReadFile(path)
		n, _ := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		return n
	}
	// The fourth field of loadavg is running/total tasks.
	la, _ := os.ReadFile("/proc/loadavg")
	var tasks int64
	if f := bytes.Fields(la); len(f) >= 4 {
		if i := bytes.IndexByte(f[3], '/'); i >= 0 {
			tasks, _ = strconv.ParseInt(string(f[3][i+1:]), 10, 64)
		}
	}
	need := tasks + idleProcs + 1000
	if pm := readInt("/proc/sys/kernel/pid_max"); pm < need {
		return fmt.Sprintf("kernel.pid_max is %d; %d tasks run and %d more are needed", pm, tasks, idleProcs)
	}
	if tm := readInt("/proc/sys/kernel/threads-max"); tm < need {
		return fmt.Sprintf("kernel.threads-max is %d; %d tasks run and %d more are needed", tm, tasks, idleProcs)
	}
	var rl syscall.Rlimit
	if os.Geteuid() != 0 && syscall.Getrlimit(6 /* RLIMIT_NPROC */, &rl) == nil && int64(rl.Cur) < need {
		return fmt.Sprintf("RLIMIT_NPROC is %d; %d tasks run and %d more are needed", rl.Cur, tasks, idleProcs)
	}
	return ""
}

// killIdle kills and reaps the idle children.
func killIdle() {
	for _, pid := range idle.pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range idle.pids {
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
	}
	idle.pids = nil
}

// BenchmarkProcessGeneratorRealIdle scans this machine's /proc with 10,000
// more idle processes (sleep) in it, without and with the schedstat gate,
// in one run; carry=off builds every series of an unchanged process
// (as before Scan.Carry); list=all lists every process every scan (as
// before discovery). fds=limit lets the generator keep descriptors up to
// the open files limit less a margin, beyond its default budget of half
// the limit.
func BenchmarkProcessGeneratorRealIdle(b *testing.B) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		b.Skip("no /proc/self/schedstat")
	}
	spawnIdle(b)
	f := func(gate, carry, fdLimit, listAll bool) func(b *testing.B) {
		return func(b *testing.B) {
			g := New(Options{})
			b.Cleanup(func() { _ = g.Close() })
			g.noGate, g.noCarry = !gate, !carry
			g.noSeek = listAll
			if fdLimit {
				g.fdMax = fdsLeft(b)
			}
			benchIdle(b, g)
		}
	}
	b.Run("gate=off", f(false, false, false, false))
	b.Run("gate=on", f(true, true, false, false))
	b.Run("gate=on/carry=off/fds=limit", f(true, false, true, false))
	b.Run("gate=on/fds=limit/list=all", f(true, true, true, true))
	b.Run("gate=on/fds=limit", f(true, true, true, false))
	b.Run("floor", benchIdleFloor)
}

// fdsLeft is how many more descriptors the test process may open, less a
// margin of 512.
func fdsLeft(b *testing.B) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Fatal(err)
	}
	return int(rl.Cur) - len(open) - 512
}

// benchIdleFloor is the read floor of an idle process under the gate:
// pread schedstat and stat through descriptors kept open (as many as the
// limit allows, in that order of priority, as the generator keeps them;
// by path past that), nothing parsed or written, and no listing. The
// generator's cost over this is its own, plus listing /proc (all of it
// every fullListEvery-th scan, the PIDs allocated since otherwise) and
// reading three counters.
func benchIdleFloor(b *testing.B) {
	budget := fdsLeft(b)
	d := dirReader{fd: -1, buf: make([]byte, 32<<10)}
	list := func(each func(name []byte)) {
		if err := d.open([]byte("/proc\x00")); err != nil {
			b.Fatal(err)
		}
		defer d.close()
		for {
			name, err := d.next()
			if err != nil {
				b.Fatal(err)
			}
			if name == nil {
				return
			}
			if _, ok := parsePID(name); ok {
				each(name)
			}
		}
	}
	// Descriptors by position in the listing, as long as the process at
	// that position is the same (the host's own processes may come and go).
	type files struct {
		pid         int32
		sched, stat int
	}
	var procs []files
	list(func(name []byte) {
		pid, _ := parsePID(name)
		procs = append(procs, files{pid, -1, -1})
	})
	// Descriptors for schedstat and stat alike, priority to stat.
	i := 0
	list(func(name []byte) {
		if i >= len(procs) {
			return
		}
		for j, f := range []string{"stat", "schedstat"} {
			if budget <= 0 || (j == 1 && budget <= len(procs)-i) {
				continue
			}
			fd, err := syscall.Open("/proc/"+string(name)+"/"+f, syscall.O_RDONLY, 0)
			if err != nil {
				continue
			}
			budget--
			if j == 0 {
				procs[i].stat = fd
			} else {
				procs[i].sched = fd
			}
		}
		i++
	})
	b.Cleanup(func() {
		for _, p := range procs {
			for _, fd := range []int{p.sched, p.stat} {
				if fd >= 0 {
					_ = syscall.Close(fd)
				}
			}
		}
	})
	buf := make([]byte, 4096)
	path := make([]byte, 0, 64)
	read := func(fd int, name []byte, file string) {
		if fd >= 0 {
			_, _ = syscall.Pread(fd, buf, 0)
			return
		}
		path = append(append(append(append(path[:0], "/proc/"...), name...), '/'), file...)
		if fd, err := syscall.Open(string(path), syscall.O_RDONLY, 0); err == nil {
			_, _ = syscall.Pread(fd, buf, 0)
			_ = syscall.Close(fd)
		}
	}
	names := make([][]byte, 0, len(procs))
	list(func(name []byte) { names = append(names, append([]byte(nil), name...)) })
	scan := func() {
		for i, name := range names {
			p := files{-1, -1, -1}
			if pid, _ := parsePID(name); i < len(procs) && procs[i].pid == pid {
				p = procs[i]
			}
			read(p.sched, name, "schedstat")
			read(p.stat, name, "stat")
		}
	}
	scan()
	cpu := cpuPerRun(b, scan)
	b.ReportMetric(cpu/1e3/float64(len(procs)), "cpu-us/proc")
	b.ReportMetric(cpu/1e9*100, "%core-at-1s")
	b.ReportMetric(float64(len(procs)), "processes")
}

// benchIdle runs g in steady state and reports the CPU time (user+system,
// whole test process) per process and per scan.
func benchIdle(b *testing.B, g *Generator) {
	b.Helper()
	run := benchScan(b, g, 60)
	// New processes, then the gate's basis, then the descriptors spread
	// over the processes by setTier.
	for range 4 {
		run()
	}
	n := g.Tracked()
	st0, io0 := g.SkippedReads()
	c0 := g.carried
	l0 := g.disc.full
	b.ReportAllocs()
	cpu := cpuPerRun(b, run)
	st, io := g.SkippedReads()
	b.ReportMetric(cpu/1e3/float64(n), "cpu-us/proc")
	b.ReportMetric(cpu/1e9*100, "%core-at-1s")
	b.ReportMetric(float64(n), "processes")
	b.ReportMetric(float64(g.kept)/float64(n), "kept-fds/proc")
	b.ReportMetric(float64(st-st0)/float64(b.N)/float64(n), "status-skipped/proc")
	b.ReportMetric(float64(io-io0)/float64(b.N)/float64(n), "io-skipped/proc")
	b.ReportMetric(float64(g.carried-c0)/float64(b.N)/float64(n), "carried/proc")
	b.ReportMetric(float64(g.disc.full-l0)/float64(b.N), "full-listings/scan")
}
