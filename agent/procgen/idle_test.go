package procgen

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// userStat returns the stat line of a user process with one thread.
func userStat(pid int, state byte, ppid int, utime, start uint64) string {
	return statLine(pid, "p"+strconv.Itoa(pid), state, ppid, utime, 10, start)
}

// vmstatText returns a /proc/vmstat with the given pgscan_kswapd count and
// the other reclaim counters at fixed values.
func vmstatText(pgscan uint64) string {
	return "nr_free_pages 1000\npgfault 99\npgscan_kswapd " + strconv.FormatUint(pgscan, 10) +
		"\npgscan_direct 3\npgsteal_kswapd 7\npswpout 0\nzswpout 0\nthp_collapse_alloc 0\noom_kill 0\n"
}

// idleTree writes user processes, each with one schedstat that does not
// move, and a /proc/vmstat, and returns a scanner that writes every series
// every cycle, with the loadavg condition met (soleRun) and schedstat read
// by path trusted (a fixture tree keeps no descriptors). stats holds each
// process's stat by PID, for a utime.
func idleTree(t *testing.T) (root string, sc *scanner, stats map[string]func(utime uint64) string) {
	t.Helper()
	root = newRoot(t)
	stats = map[string]func(uint64) string{
		// Trusted: init, a daemon of init, its child, another of init.
		"1":  func(u uint64) string { return userStat(1, 'S', 0, u, 5) },
		"10": func(u uint64) string { return userStat(10, 'S', 1, u, 50) },
		"20": func(u uint64) string { return userStat(20, 'S', 10, u, 60) },
		"30": func(u uint64) string { return userStat(30, 'S', 1, u, 70) },
		// Not trusted: uninterruptible, two threads, a parent of a higher
		// PID, a parent in an outer PID namespace, running, stopped.
		"21": func(u uint64) string { return userStat(21, 'D', 10, u, 60) },
		"22": func(u uint64) string { return withThreads(userStat(22, 'S', 10, u, 60), 2) },
		"23": func(u uint64) string { return userStat(23, 'S', 30, u, 65) },
		"24": func(u uint64) string { return userStat(24, 'S', 0, u, 65) },
		"25": func(u uint64) string { return userStat(25, 'R', 10, u, 65) },
		"26": func(u uint64) string { return userStat(26, 'T', 10, u, 65) },
	}
	files := map[string]string{"vmstat": vmstatText(1000)}
	for pid := range stats {
		n, _ := strconv.Atoi(pid)
		for k, v := range procFiles(n, "p"+pid, 'S', 1, 1, 3, "") {
			files[k] = v
		}
		files[pid+"/stat"] = stats[pid](100)
		files[pid+"/schedstat"] = "1000 20 7\n"
	}
	writeTree(t, root, files)
	g := New(Options{ProcRoot: root})
	g.soleRun, g.kByPath = true, true
	return root, newScanner(g, 1), stats
}

// idleStepper runs scans of an idleTree, writing a new utime into every
// stat file before each, and checks which processes were read: a user
// process's utime cannot change without its schedstat, so for those not
// read what is written is what a read would have shown.
type idleStepper struct {
	t     *testing.T
	root  string
	sc    *scanner
	stats map[string]func(uint64) string
	utime uint64
	skip  uint64 // SkippedStats expected
}

func (st *idleStepper) step(what string, unread ...string) []string {
	st.t.Helper()
	st.utime++
	files := map[string]string{}
	for pid, stat := range st.stats {
		files[pid+"/stat"] = stat(st.utime)
	}
	writeTree(st.t, st.root, files)
	ls := st.sc.cycle(st.t)
	got := userCPU(ls)
	old := map[string]bool{}
	for _, pid := range unread {
		old[pid] = true
	}
	read := strconv.FormatFloat(float64(st.utime)/userHZ, 'g', -1, 64)
	for pid := range st.stats {
		v, ok := got[pid]
		switch {
		case !ok:
			st.t.Errorf("%s: pid %s: no user CPU written", what, pid)
		case old[pid] && v == read:
			st.t.Errorf("%s: pid %s: stat read (user CPU %s), want it left unread", what, pid, v)
		case !old[pid] && v != read:
			st.t.Errorf("%s: pid %s: user CPU %s, want %s (stat read)", what, pid, v, read)
		}
	}
	st.skip += uint64(len(unread))
	if n := st.sc.g.SkippedStats(); n != st.skip {
		st.t.Errorf("%s: SkippedStats = %d, want %d", what, n, st.skip)
		st.skip = n
	}
	return ls
}

// idleTrusted are the processes of an idleTree whose stat may go unread.
var idleTrusted = []string{"1", "10", "20", "30"}

// startIdle returns a stepper over a new idleTree that has scanned twice
// (the second scan is the gate's basis) and once more with the trusted
// processes left unread.
func startIdle(t *testing.T) *idleStepper {
	t.Helper()
	root, sc, stats := idleTree(t)
	st := &idleStepper{t: t, root: root, sc: sc, stats: stats, utime: 100}
	st.step("first scan")
	st.step("second scan: the gate's basis")
	st.step("idle", idleTrusted...)
	return st
}

// A sleeping user process with one thread whose schedstat has not moved
// has its stat left unread while loadavg counts the generator alone, no
// reclaim counter of /proc/vmstat moved since its stat was read, and its
// parent (of a lower PID) was seen alive in the scan; every other process
// has its stat read, and every process every userStatEvery-th scan.
func TestIdleUserStatSkipped(t *testing.T) {
	st := startIdle(t)
	root, sc, stats, trusted := st.root, st.sc, st.stats, idleTrusted
	st.step("idle again", trusted...)

	// Reclaim ran: every user process's stat is read, and the next scan
	// may leave them unread again.
	writeTree(t, root, map[string]string{"vmstat": vmstatText(1064)})
	st.step("reclaim")
	st.step("idle after reclaim", trusted...)

	// 10 ran: read; its child 20 too (its parent was not seen still). 20
	// is left unread again the next scan, 10 once the new schedstat is
	// the basis.
	writeTree(t, root, map[string]string{"10/schedstat": "1001 20 8\n"})
	st.step("10 ran", "1", "30", "20")
	st.step("all idle", trusted...)

	// Another task runnable: every stat is read.
	sc.g.soleRun = false
	st.step("another task runnable")
	sc.g.soleRun = true
	st.step("generator alone again", trusted...)

	// The backstop: every userStatEvery-th scan reads each stat (one
	// carried without it so far).
	for i := 0; i < userStatEvery-2; i++ {
		st.step("idle, scan "+strconv.Itoa(i), trusted...)
	}
	st.step("backstop")
	st.step("after the backstop", trusted...)

	// The carried series are those a read gives: with every stat file as
	// at the last read (the backstop), a generator that reads every stat
	// writes the same lines.
	built := carriedAsRead(t, root, sc, stats, st.utime-1)
	if sc.g.SkippedStats() != st.skip+4 || built.g.SkippedStats() != 0 {
		t.Errorf("SkippedStats = %d and %d, want %d and 0", sc.g.SkippedStats(), built.g.SkippedStats(), st.skip+4)
	}
}

// A parent that exits (a zombie): its child's stat is read, and the new
// parent written.
func TestIdleUserStatParentExits(t *testing.T) {
	st := startIdle(t)
	root, stats := st.root, st.stats

	// 10 exits: it ran (new schedstat), its stat shows Z, and 20 is
	// given to init.
	stats["10"] = func(u uint64) string { return userStat(10, 'Z', 1, u, 50) }
	stats["20"] = func(u uint64) string { return userStat(20, 'S', 1, u, 60) }
	writeTree(t, root, map[string]string{"10/schedstat": "1001 20 8\n"})
	ls := st.step("10 a zombie", "1", "30")
	if !hasLine(ls, `proc_pid_info{pid="20",comm="p20",ppid="1",uid="1000",cmdline=""} 1`) {
		t.Errorf("20's new parent not written:\n%s", strings.Join(grep(ls, `pid="20"`), "\n"))
	}
	st.step("20 now init's", "1", "30", "20")
}

// A parent whose PID a younger process took (the parent exited and was
// reaped between two scans): its child's stat is read.
func TestIdleUserStatParentPIDReused(t *testing.T) {
	st := startIdle(t)
	root, stats := st.root, st.stats
	stats["10"] = func(u uint64) string { return userStat(10, 'S', 1, u, 90) }
	writeTree(t, root, map[string]string{"10/schedstat": "5 1 1\n"})
	st.step("PID 10 taken by a process younger than 20", "1", "30")
	// 10's stat is read once more (a reset process's first schedstat is
	// no basis), 20's while its recorded parent is younger than it.
	st.step("20's recorded parent younger than 20", "1", "30")
	st.step("again", "1", "30", "10")
}

// Without /proc/vmstat's reclaim counters (no file, or no pgscan line) no
// user process's stat is left unread.
func TestIdleUserStatNeedsVmstat(t *testing.T) {
	for _, c := range []struct{ name, vmstat string }{
		{"no pgscan line", "nr_free_pages 1000\npswpout 0\n"},
		{"malformed counter", "pgscan_kswapd x\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, sc, stats := idleTree(t)
			writeTree(t, root, map[string]string{"vmstat": c.vmstat})
			st := &idleStepper{t: t, root: root, sc: sc, stats: stats, utime: 100}
			for i := 0; i < 4; i++ {
				st.step("scan " + strconv.Itoa(i))
			}
		})
	}
}

func TestParseReclaim(t *testing.T) {
	for _, c := range []struct {
		in   string
		sum  uint64
		isOK bool
	}{
		{vmstatText(1000), 1003, true},
		{"pgscan_kswapd 1\npgscan_direct 2\npgscan_khugepaged 4\npgscan_anon 8\npgscan_file 16\npswpout 32\nzswpout 64\nthp_collapse_alloc 128\nthp_collapse_alloc_failed 256\noom_kill 512", 1023 - 256, true},
		{"pgscan_kswapd 1\npswpout_x 5\npswpin 2\n", 3, true},
		{"pswpout 3\n", 0, false},
		{"", 0, false},
		{"pgscan_kswapd -1\n", 0, false},
		{"pgscan_kswapd\n", 0, false},
	} {
		sum, ok := parseReclaim([]byte(c.in))
		if ok != c.isOK || (ok && sum != c.sum) {
			t.Errorf("parseReclaim(%q) = %d, %v, want %d, %v", c.in, sum, ok, c.sum, c.isOK)
		}
	}
}

// On this host's /proc, idle `sleep` children of the test have their stat
// left unread when loadavg is taken to count the generator alone, and the
// series written for them are those a generator that reads every stat
// writes.
func TestIdleUserStatSkippedRealProc(t *testing.T) {
	g := soleRealProc(t, "/proc/self/schedstat", "no schedstat in this /proc (CONFIG_SCHED_INFO off)")
	// The sleeps are a shell's children, forked right after it: their
	// parent has a lower PID even where PIDs have wrapped since the test
	// started (its own PID may be higher than theirs).
	cmd := exec.Command("sh", "-c", "for i in 1 2 3; do sleep 600 & echo $!; done; exec sleep 600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int32
	r := bufio.NewScanner(out)
	for len(pids) < 3 && r.Scan() {
		pid, err := strconv.Atoi(r.Text())
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, int32(pid))
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(int(pid), syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if len(pids) < 3 || pids[0] < int32(cmd.Process.Pid) {
		t.Skipf("PIDs wrapped between the shell (%d) and its children %v", cmd.Process.Pid, pids)
	}
	sc := newScanner(g, 1)
	unread := map[int32]bool{}
	epochs := map[uint64]bool{}
	for i := 0; i < 12 && len(unread) < len(pids); i++ {
		sc.cycle(t)
		epochs[g.reclaimEpoch] = true
		for _, pid := range pids {
			if p := g.procs[pid]; p != nil && p.sinceStat > 0 {
				unread[pid] = true
			}
		}
	}
	if !g.reclaimOK {
		t.Fatalf("no reclaim counters read from /proc/vmstat")
	}
	if len(unread) < len(pids) {
		if len(epochs) >= 10 {
			t.Skipf("this host reclaimed memory in nearly every scan (%d reclaim epochs in 12 scans): no stat may be left unread", len(epochs))
		}
		t.Fatalf("stat left unread for %d of the %d idle sleep processes %v in 12 scans", len(unread), len(pids), pids)
	}
	// The series written for a sleep whose stat is not read are those a
	// read gives.
	built := newScanner(New(Options{}), 1)
	defer built.g.Close()
	built.g.noKCarry = true
	built.cycle(t)
	built.cycle(t)
	for i := 0; ; i++ {
		if i == 12 {
			t.Fatalf("sleep %d: stat read in each of 12 scans", pids[0])
		}
		carried, read := sc.cycle(t), built.cycle(t)
		pid := strconv.Itoa(int(pids[0]))
		if p := g.procs[pids[0]]; p == nil || p.sinceStat == 0 {
			continue // read this time (the backstop, or reclaim): the next one
		}
		got, want := grep(carried, `{pid="`+pid+`"`), grep(read, `{pid="`+pid+`"`)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) == 0 {
			t.Errorf("series of sleep %s without its stat read:\n%s\nread:\n%s", pid, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		break
	}
}

// With threads on, a sleeping thread of a user process whose schedstat has
// not moved has its stat left unread while loadavg counts the generator
// alone, whatever its process's memory and parent: a thread's series
// carry neither. A running or uninterruptible thread is read.
func TestIdleThreadStatSkipped(t *testing.T) {
	root := newRoot(t)
	files := procFiles(40, "x", 'S', 1, 1, 3, "")
	files["40/schedstat"] = "1000 20 7\n"
	states := map[string]byte{"40": 'S', "41": 'S', "42": 'D', "43": 'R'}
	for tid := range states {
		files["40/task/"+tid+"/schedstat"] = "1000 20 7\n"
		files["40/task/"+tid+"/status"] = statusText("x", 0, 5, 1)
	}
	write := func(utime uint64) {
		files["40/stat"] = withThreads(statLine(40, "x", 'S', 1, utime, 10, 3), len(states))
		for tid, state := range states {
			n, _ := strconv.Atoi(tid)
			files["40/task/"+tid+"/stat"] = statLine(n, "x", state, 1, utime, 10, 3)
		}
		writeTree(t, root, files)
	}
	g := New(Options{ProcRoot: root, Threads: true})
	g.soleRun, g.kByPath = true, true
	sc := newScanner(g, 1)
	threadCPU := func(ls []string) map[string]string {
		out := map[string]string{}
		for tid := range states {
			for _, l := range grep(ls, `{pid="40",tid="`+tid+`",mode="user"}`) {
				out[tid] = l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return out
	}
	for i, c := range []struct {
		sole    bool
		unread  string // threads left unread
		skipped uint64
	}{
		{true, "", 0},      // first scan
		{true, "", 0},      // the gate's basis
		{true, "40 41", 2}, // sleeping threads left unread
		{false, "", 2},     // another task runnable
		{true, "40 41", 4},
	} {
		utime := uint64(100 + i)
		write(utime)
		g.soleRun = c.sole
		got := threadCPU(sc.cycle(t))
		for tid := range states {
			want := strconv.FormatFloat(float64(utime)/userHZ, 'g', -1, 64)
			unread := strings.Contains(c.unread, tid)
			if (got[tid] == want) == unread {
				t.Errorf("scan %d: thread %s: user CPU %s (read at %s), want unread %v", i, tid, got[tid], want, unread)
			}
		}
		if n := g.SkippedStats(); n != c.skipped {
			t.Errorf("scan %d: SkippedStats = %d, want %d", i, n, c.skipped)
		}
	}
}

// With a budget of half a descriptor per thread, threads keep their
// schedstat's (what lets a sleeping thread's stat go unread) before any
// keeps its stat's. A fixture tree keeps no descriptors unless told to:
// fdMax is set by hand.
func TestThreadDescriptorsSchedstatFirst(t *testing.T) {
	root := newRoot(t)
	files := procFiles(40, "x", 'S', 1, 1, 3, "")
	files["40/stat"] = withThreads(statLine(40, "x", 'S', 1, 100, 10, 3), 40)
	files["40/schedstat"] = "1000 20 7\n"
	for tid := 40; tid < 80; tid++ {
		d := "40/task/" + strconv.Itoa(tid) + "/"
		files[d+"stat"] = statLine(tid, "x", 'S', 1, 100, 10, 3)
		files[d+"schedstat"] = "1000 20 7\n"
		files[d+"status"] = statusText("x", 0, 5, 1)
	}
	writeTree(t, root, files)
	g := New(Options{ProcRoot: root, Threads: true})
	defer g.Close()
	g.fdMax = nFDs + 20 // the process's four, and 20 for its 40 threads
	sc := newScanner(g, 1)
	for range 4 {
		sc.cycle(t)
	}
	if g.threadTier != 0 {
		t.Fatalf("threadTier %d with a budget of %d for 40 threads, want 0", g.threadTier, g.threadBudget)
	}
	sched, stat := 0, 0
	for _, th := range g.procs[40].threads {
		if th.fds[tfdSched] != 0 {
			sched++
		}
		if th.fds[tfdStat] != 0 {
			stat++
		}
	}
	if sched != 20 || stat != 0 {
		t.Errorf("of 40 threads, %d keep their schedstat's descriptor and %d their stat's; want 20 and 0", sched, stat)
	}
}
