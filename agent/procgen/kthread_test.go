package procgen

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kthreadStat returns a stat line of a kernel thread: PF_KTHREAD among
// its flags, no memory.
func kthreadStat(pid int, comm string, state byte, ppid int, utime uint64) string {
	l := statLine(pid, comm, state, ppid, utime, 0, 3)
	l = strings.Replace(l, " 4194560 ", " "+strconv.Itoa(0x04208040)+" ", 1)
	return strings.Replace(l, " 172032000 2750 ", " 0 0 ", 1)
}

// kthreadTree writes kernel threads and one user process, each with a
// schedstat, and returns a scanner writing every series every cycle, with
// the loadavg condition met (soleRun) and schedstat read by path trusted
// (a fixture tree keeps no descriptors).
func kthreadTree(t *testing.T) (root string, sc *scanner, procs map[string]func(utime uint64) string) {
	t.Helper()
	root = newRoot(t)
	procs = map[string]func(uint64) string{
		"2":  func(u uint64) string { return kthreadStat(2, "kthreadd", 'S', 0, u) },
		"40": func(u uint64) string { return kthreadStat(40, "kworker/0:1-events", 'I', 2, u) },
		"41": func(u uint64) string { return kthreadStat(41, "ksoftirqd/0", 'S', 2, u) },
		"42": func(u uint64) string { return kthreadStat(42, "migration/1", 'P', 2, u) },
		// Not trusted: not yet named by its creator, another parent,
		// uninterruptible (frozen shows D), two threads, running, and a
		// user process.
		"50": func(u uint64) string { return kthreadStat(50, "kthreadd", 'S', 2, u) },
		"51": func(u uint64) string { return kthreadStat(51, "orphan", 'S', 1, u) },
		"52": func(u uint64) string { return kthreadStat(52, "jbd2/vda1-8", 'D', 2, u) },
		"53": func(u uint64) string { return withThreads(kthreadStat(53, "two", 'S', 2, u), 2) },
		"54": func(u uint64) string { return kthreadStat(54, "busy", 'R', 2, u) },
		"30": func(u uint64) string { return statLine(30, "idle", 'S', 1, u, 10, 500) },
	}
	files := map[string]string{}
	for pid, stat := range procs {
		n, _ := strconv.Atoi(pid)
		for k, v := range procFiles(n, "x", 'S', 1, 1, 3, "") {
			files[k] = v
		}
		files[pid+"/stat"] = stat(100)
		files[pid+"/schedstat"] = "1000 20 7\n"
	}
	writeTree(t, root, files)
	g := New(Options{ProcRoot: root})
	g.soleRun, g.kByPath = true, true
	return root, newScanner(g, 1), procs
}

// userCPU returns the user CPU value each process of ls has, by PID.
func userCPU(ls []string) map[string]string {
	out := map[string]string{}
	for _, l := range grep(ls, mCPU+`{pid="`) {
		if !strings.Contains(l, `mode="user"`) {
			continue
		}
		pid := l[len(mCPU+`{pid="`):]
		pid = pid[:strings.IndexByte(pid, '"')]
		out[pid] = l[strings.LastIndexByte(l, ' ')+1:]
	}
	return out
}

// soleRealProc returns a generator of this host's /proc that takes
// loadavg to count it alone as runnable, closed at the test's end; the
// test is skipped when file, which the test needs, is absent (why says
// what that means) or when no descriptors are kept.
func soleRealProc(t *testing.T, file, why string) *Generator {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		t.Skip(why)
	}
	g := New(Options{})
	t.Cleanup(func() { _ = g.Close() })
	if g.fdMax == 0 {
		t.Skip("no descriptors kept (open files limit below 8192)")
	}
	g.soleRun = true
	return g
}

// An idle kernel thread of kthreadd whose schedstat has not moved has its
// stat left unread when loadavg counts the generator alone as runnable;
// every other process, and every process when loadavg counts more, has its
// stat read. The fixture changes utime in every stat file so that a read
// shows: a kernel thread's utime cannot change without its schedstat, so
// what is written for those not read is what they would show.
func TestKthreadStatSkipped(t *testing.T) {
	root, sc, procs := kthreadTree(t)
	g := sc.g
	utime := uint64(100)
	step := func(what string, wantOld []string, wantSkipped uint64) {
		t.Helper()
		utime++
		files := map[string]string{}
		for pid, stat := range procs {
			files[pid+"/stat"] = stat(utime)
		}
		writeTree(t, root, files)
		got := userCPU(sc.cycle(t))
		old := map[string]bool{}
		for _, pid := range wantOld {
			old[pid] = true
		}
		read := strconv.FormatFloat(float64(utime)/userHZ, 'g', -1, 64)
		for pid := range procs {
			v, ok := got[pid]
			switch {
			case !ok:
				t.Errorf("%s: pid %s: no user CPU written", what, pid)
			case old[pid] && v == read:
				t.Errorf("%s: pid %s: stat read (user CPU %s), want it left unread", what, pid, v)
			case !old[pid] && v != read:
				t.Errorf("%s: pid %s: user CPU %s, want %s (stat read)", what, pid, v, read)
			}
		}
		if n := g.SkippedStats(); n != wantSkipped {
			t.Errorf("%s: SkippedStats = %d, want %d", what, n, wantSkipped)
		}
	}
	trusted := []string{"2", "40", "41", "42"}
	step("first scan", nil, 0)
	step("second scan: the gate's basis", nil, 0)
	step("idle", trusted, 4)
	step("idle again", trusted, 8)
	// 41 ran: read; next scan, its new schedstat is the basis.
	writeTree(t, root, map[string]string{"41/schedstat": "1001 20 8\n"})
	step("41 ran", []string{"2", "40", "42"}, 11)
	step("all idle", trusted, 15)
	// loadavg counts other runnable tasks: every stat is read.
	g.soleRun = false
	step("another task runnable", nil, 15)
	g.soleRun = true
	step("generator alone again", trusted, 19)
	// The backstop: stat read every fullListEvery-th scan (one carried
	// without it so far).
	n := g.SkippedStats()
	for i := 0; i < fullListEvery-2; i++ {
		n += 4
		step("idle, scan "+strconv.Itoa(i), trusted, n)
	}
	step("backstop", nil, n)
	step("after the backstop", trusted, n+4)

	// The carried series are those a read gives: with every stat file as
	// the trusted threads' last read (at the backstop), a generator that
	// reads every stat writes the same lines.
	built := carriedAsRead(t, root, sc, procs, utime-1)
	if g.SkippedStats() != n+8 || built.g.SkippedStats() != 0 {
		t.Errorf("SkippedStats = %d and %d, want %d and 0", g.SkippedStats(), built.g.SkippedStats(), n+8)
	}
}

// carriedAsRead writes each stat file of stats with utime (their last
// read's) and checks that sc's next scan, with stats left unread, writes
// what a generator reading every stat of root writes; it returns that one.
func carriedAsRead(t *testing.T, root string, sc *scanner, stats map[string]func(uint64) string, utime uint64) *scanner {
	t.Helper()
	files := map[string]string{}
	for pid, stat := range stats {
		files[pid+"/stat"] = stat(utime)
	}
	writeTree(t, root, files)
	built := newScanner(New(Options{ProcRoot: root}), 1)
	built.g.noKCarry = true
	built.cycle(t)
	built.cycle(t)
	if got, want := strings.Join(sc.cycle(t), "\n"), strings.Join(built.cycle(t), "\n"); got != want {
		t.Errorf("carried without stat:\n%s\nread:\n%s", got, want)
	}
	return built
}

// A schedstat read by path is no proof that the PID is still the same
// task's: without a descriptor kept from before, stat is read.
func TestKthreadNeedsKeptDescriptor(t *testing.T) {
	root, sc, _ := kthreadTree(t)
	sc.g.kByPath = false
	for i := 0; i < 4; i++ {
		sc.cycle(t)
	}
	// A new kernel thread behind PID 40, asleep, same schedstat.
	writeTree(t, root, map[string]string{"40/stat": strings.Replace(kthreadStat(40, "kworker/0:2", 'I', 2, 100), " 0 3 0 0 ", " 0 9 0 0 ", 1)})
	ls := sc.cycle(t)
	if !hasLine(ls, `proc_pid_info{pid="40",comm="kworker/0:2",ppid="2",uid="1000",cmdline=""} 1`) {
		t.Errorf("new thread behind PID 40 not read:\n%s", strings.Join(grep(ls, `pid="40"`), "\n"))
	}
	if n := sc.g.SkippedStats(); n != 0 {
		t.Errorf("SkippedStats = %d, want 0", n)
	}
}

func TestIsStillKthread(t *testing.T) {
	parse := func(l string) statFields {
		st, err := parseStat([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		pid  int32
		stat string
		want bool
	}{
		{2, kthreadStat(2, "kthreadd", 'S', 0, 1), true},
		{2, kthreadStat(2, "kthreadd", 'S', 1, 1), false},
		{9, kthreadStat(9, "rcu_preempt", 'I', 2, 1), true},
		{9, kthreadStat(9, "kthreadd", 'I', 2, 1), false},
		{9, kthreadStat(9, "x", 'P', 2, 1), true},
		{9, kthreadStat(9, "x", 'D', 2, 1), false},
		{9, kthreadStat(9, "x", 'R', 2, 1), false},
		{9, kthreadStat(9, "x", 'Z', 2, 1), false},
		{9, kthreadStat(9, "x", 'S', 0, 1), false},
		{9, withThreads(kthreadStat(9, "x", 'S', 2, 1), 2), false},
		{9, statLine(9, "x", 'S', 2, 1, 1, 1), false},
	} {
		st := parse(c.stat)
		if got := isStillKthread(c.pid, &st); got != c.want {
			t.Errorf("isStillKthread(%d, %q) = %v, want %v", c.pid, c.stat, got, c.want)
		}
	}
}

// On this machine's /proc, with loadavg's condition taken as met: idle
// kernel threads keep their schedstat descriptors and have their stat
// left unread.
func TestKthreadStatSkippedRealProc(t *testing.T) {
	g := soleRealProc(t, "/proc/2/schedstat", "no kernel threads in this /proc")
	sc := newScanner(g, 1)
	for i := 0; i < 4; i++ {
		sc.cycle(t)
	}
	if g.SkippedStats() == 0 {
		t.Errorf("no kernel thread's stat left unread in 4 scans of /proc")
	}
	// kthreadd is asleep almost always; whether read or not, its series
	// are there with its name and parent.
	if !hasLine(sc.cycle(t), `proc_pid_info{pid="2",comm="kthreadd",ppid="0",uid="0",cmdline=""} 1`) {
		t.Errorf("no proc_pid_info of kthreadd")
	}
}

// With threads on, the thread of an idle kernel thread has its stat left
// unread as the process does.
func TestKthreadThreadStatSkipped(t *testing.T) {
	root := newRoot(t)
	files := procFiles(40, "x", 'S', 1, 1, 3, "")
	files["40/schedstat"] = "1000 20 7\n"
	files["40/task/40/schedstat"] = "1000 20 7\n"
	files["40/task/40/status"] = statusText("kworker/0:1", 0, 5, 1)
	write := func(utime uint64) {
		stat := kthreadStat(40, "kworker/0:1", 'I', 2, utime)
		files["40/stat"], files["40/task/40/stat"] = stat, stat
		writeTree(t, root, files)
	}
	g := New(Options{ProcRoot: root, Threads: true})
	g.soleRun, g.kByPath = true, true
	sc := newScanner(g, 1)
	threadCPU := func(ls []string) string {
		for _, l := range grep(ls, `{pid="40",tid="40",mode="user"}`) {
			return l[strings.LastIndexByte(l, ' ')+1:]
		}
		return "none"
	}
	for i, c := range []struct {
		sole    bool
		want    string
		skipped uint64
	}{
		{true, "1", 0},    // first scan
		{true, "1.01", 0}, // the gate's basis
		{true, "1.01", 2}, // process and thread left unread
		{false, "1.03", 2},
		{true, "1.03", 4},
	} {
		write(uint64(100 + i))
		g.soleRun = c.sole
		if got := threadCPU(sc.cycle(t)); got != c.want {
			t.Errorf("scan %d: thread user CPU %s, want %s", i, got, c.want)
		}
		if n := g.SkippedStats(); n != c.skipped {
			t.Errorf("scan %d: SkippedStats = %d, want %d", i, n, c.skipped)
		}
	}
}

// recheckRun reads loadavg again after 8 candidates visited, then after
// 16 more, 32 more and so on, at most 12 times a scan, until a read counts
// one runnable task. (The wait at the first candidate is TestQuietRun's:
// it is taken as done here.)
func TestRecheckRun(t *testing.T) {
	for _, c := range []struct {
		loadavg   string
		visits    int
		wantOne   bool
		wantReads int
	}{
		{"0.1 0.2 0.3 1/100 500\n", 7, false, 0},
		{"0.1 0.2 0.3 1/100 500\n", 8, true, 1},
		{"0.1 0.2 0.3 1/100 500\n", 80, true, 1},
		{"0.1 0.2 0.3 3/100 500\n", 23, false, 1},
		{"0.1 0.2 0.3 3/100 500\n", 24, false, 2},
		{"0.1 0.2 0.3 3/100 500\n", 80, false, 3},     // 8, 24, 56
		{"0.1 0.2 0.3 3/100 500\n", 10000, false, 10}, // ... 4088, 8184
		{"0.1 0.2 0.3 3/100 500\n", 1 << 20, false, 12},
		{"garbage\n", 24, false, 2},
	} {
		path := t.TempDir() + "/loadavg"
		if err := os.WriteFile(path, []byte(c.loadavg), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		g := New(Options{ProcRoot: t.TempDir()})
		g.disc.able, g.disc.fds[dLoadavg] = true, int(f.Fd())+1
		g.waited = true
		for range c.visits {
			g.recheckRun()
		}
		if g.oneRun != c.wantOne || g.runReads != c.wantReads {
			t.Errorf("%q after %d kernel threads: oneRun %v after %d reads, want %v after %d",
				c.loadavg, c.visits, g.oneRun, g.runReads, c.wantOne, c.wantReads)
		}
		f.Close()
	}
}

// The first candidate of a scan whose first loadavg read counted other
// tasks waits for a quiet moment: up to 4 jittered sleeps of 0.5 to 1.5 ms,
// each followed by a loadavg read, until one counts the generator alone;
// no wait when the scan's first read did, and none at later candidates.
func TestQuietRun(t *testing.T) {
	const busy, quiet = "0.1 0.2 0.3 3/100 500\n", "0.1 0.2 0.3 1/100 500\n"
	for _, c := range []struct {
		name      string
		firstOne  bool // the scan's first read counted one task
		quietFrom int  // loadavg counts one from this sleep on (1-based); 0: never
		wantOne   bool
		wantWaits int
		wantReads int // rechecks after the wait, over 24 candidates
	}{
		{"first read quiet", true, 0, true, 0, 0},
		{"quiet after one sleep", false, 1, true, 1, 0},
		{"quiet after three sleeps", false, 3, true, 3, 0},
		{"quiet only after the wait", false, 5, false, 4, 2},
		{"never quiet", false, 0, false, 4, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "loadavg")
			if err := os.WriteFile(path, []byte(busy), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g := New(Options{ProcRoot: t.TempDir()})
			g.disc.able, g.disc.fds[dLoadavg] = true, int(f.Fd())+1
			g.oneRun = c.firstOne
			var slept []time.Duration
			g.sleep = func(d time.Duration) {
				slept = append(slept, d)
				if len(slept) == c.quietFrom {
					if err := os.WriteFile(path, []byte(quiet), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 24 {
				g.recheckRun()
			}
			if g.oneRun != c.wantOne || len(slept) != c.wantWaits || int(g.runWaits) != c.wantWaits || g.runReads != c.wantReads {
				t.Fatalf("oneRun %v after %d sleeps, %d reads after them and %d rechecks; want %v, %d, %d, %d",
					g.oneRun, len(slept), g.runWaits, g.runReads, c.wantOne, c.wantWaits, c.wantWaits, c.wantReads)
			}
			for _, d := range slept {
				if d < runWaitMin || d >= runWaitMin+runWaitJitter {
					t.Fatalf("slept %v; want %v to %v", d, runWaitMin, runWaitMin+runWaitJitter)
				}
			}
		})
	}
}
