package procgen

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestPlan(t *testing.T) {
	const pidMax = 32768
	type step struct {
		c     counters
		ok    bool
		procs int
		full  bool
		rs    []pidRange
	}
	c := func(last, forks int64) counters {
		return counters{last: last, forks: forks, tasks: 1000, pidMax: pidMax}
	}
	cases := []struct {
		name  string
		base  int64
		since int
		steps []step
	}{
		{"two scans of counters first, then the range from the older", 258, 0, []step{
			{c(1000, 50), true, 600, true, nil},
			{c(1010, 60), true, 600, true, nil},
			{c(1020, 70), true, 600, false, []pidRange{{1000, 1020}}},
			{c(1020, 70), true, 600, false, []pidRange{{1010, 1020}}},
			{c(1020, 75), true, 600, false, nil}, // forks in another namespace
		}},
		{"wrapped", 258, 0, []step{
			{c(32000, 0), true, 600, true, nil},
			{c(32700, 700), true, 600, true, nil},
			{c(400, 1200), true, 600, false, []pidRange{{0, 400}, {32000, pidMax}}},
		}},
		{"a possible whole cycle of PIDs lists everything", 258, 0, []step{ // 2*(20000+1000+300) >= 32768
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 20000), true, 600, true, nil},
		}},
		{"layout unknown", 0, 0, []step{
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{c(1001, 1), true, 600, true, nil},
		}},
		{"layout refused", -1, 0, []step{
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{c(1001, 1), true, 600, true, nil},
		}},
		{"few processes", 258, 0, []step{
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{c(1001, 1), true, 100, true, nil},
		}},
		{"a full listing every fullListEvery scans", 258, fullListEvery - 1, []step{
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{c(1001, 1), true, 600, true, nil},
		}},
		{"unreadable counters start over", 258, 0, []step{
			{c(1000, 0), true, 600, true, nil},
			{c(1000, 0), true, 600, true, nil},
			{counters{}, false, 600, true, nil},
			{c(1001, 1), true, 600, true, nil},
			{c(1002, 2), true, 600, true, nil},
			{c(1003, 3), true, 600, false, []pidRange{{1001, 1003}}},
		}},
		{"counters going back list everything", 258, 0, []step{
			{c(1000, 100), true, 600, true, nil},
			{c(1000, 100), true, 600, true, nil},
			{c(1001, 50), true, 600, true, nil},
			{c(40000, 200), true, 600, true, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := discovery{base: tc.base, sinceFull: tc.since}
			for i, s := range tc.steps {
				full, rs, n := d.plan(s.c, s.ok, s.procs)
				if full != s.full || fmt.Sprint(rs[:n]) != fmt.Sprint(s.rs) && !(n == 0 && len(s.rs) == 0) {
					t.Errorf("step %d: plan(%+v) = full %v, ranges %v; want full %v, ranges %v", i, s.c, full, rs[:n], s.full, s.rs)
				}
			}
		})
	}
}

func TestParseCounters(t *testing.T) {
	running, tasks, last, ok := parseLoadavgPIDs([]byte("0.10 0.88 1.71 3/102 6867\n"))
	if !ok || running != 3 || tasks != 102 || last != 6867 {
		t.Errorf("parseLoadavgPIDs = %d, %d, %d, %v; want 3, 102, 6867, true", running, tasks, last, ok)
	}
	for _, bad := range []string{"", "0.10 0.88 1.71 1/102", "0.1 0.8 1.7 1102 6867", "0.1 0.8 1.7 1/x 6867", "0.1 0.8 1.7 1/2 -5", "0.1 0.8 1.7 1/2 99999999999999999999", "0.1 0.8 1.7 /2 5", "0.1 0.8 1.7 -1/2 5"} {
		if _, _, _, ok := parseLoadavgPIDs([]byte(bad)); ok {
			t.Errorf("parseLoadavgPIDs(%q) accepted", bad)
		}
	}
	if n, ok := parseForks([]byte("cpu  1 2 3\nintr 5 0\nctxt 9\nbtime 1\nprocesses 4242\nprocs_running 1\n")); !ok || n != 4242 {
		t.Errorf("parseForks = %d, %v; want 4242", n, ok)
	}
	for _, bad := range []string{"processes 5\n", "cpu 1\nprocesses \n", "cpu 1\nprocesses x\n", "cpu 1\n"} {
		if _, ok := parseForks([]byte(bad)); ok {
			t.Errorf("parseForks(%q) accepted", bad)
		}
	}
}

func TestLearnBase(t *testing.T) {
	var d discovery
	d.learnBase(1258, 1000)
	d.learnBase(1300, 1042)
	if d.base != 258 {
		t.Fatalf("base = %d, want 258", d.base)
	}
	d.learnBase(1300, 1041)
	if d.base != -1 {
		t.Fatalf("base after a disagreeing offset = %d, want -1 (seeking off)", d.base)
	}
	d.learnBase(1258, 1000)
	if d.base != -1 {
		t.Fatalf("base came back to %d after being refused", d.base)
	}
}

// seekGen returns a generator of the live /proc that lists only new PIDs
// from its third scan on, and a scan function reporting whether the scan
// listed everything; it skips t when /proc cannot be listed that way.
func seekGen(t *testing.T) (*Generator, func() bool) {
	t.Helper()
	old := minSeekProcs
	minSeekProcs = 1
	t.Cleanup(func() { minSeekProcs = old })
	g := New(Options{})
	t.Cleanup(func() { _ = g.Close() })
	pool := emit.NewPool(8)
	scan := emit.NewScan(pool, discardSink{pool}, emit.NewTracker(10))
	run := func() bool {
		t.Helper()
		full := g.disc.full
		scan.Start(t.Context(), time.Now().UnixMilli())
		if err := g.Collect(scan); err != nil {
			t.Fatal(err)
		}
		if err := scan.Finish(); err != nil {
			t.Fatal(err)
		}
		return g.disc.full != full
	}
	for range 3 {
		run()
	}
	if !g.disc.able {
		t.Skip("/proc is not a procfs of this PID namespace (or has no NSpid): the generator lists every process, as it must")
	}
	if g.disc.base <= 0 {
		t.Fatalf("directory offset of PID 0 not learnt from a listing of /proc: %d", g.disc.base)
	}
	return g, run
}

// sleeper starts `sleep 60` and returns its PID and a function that kills
// and reaps it.
func sleeper(t *testing.T) (int32, func()) {
	t.Helper()
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	stop := func() {
		if !done {
			done = true
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	t.Cleanup(stop)
	return int32(c.Process.Pid), stop
}

func TestListNewFindsNewProcesses(t *testing.T) {
	g, run := seekGen(t)
	a, stopA := sleeper(t)
	if run() {
		t.Fatal("scan listed every process; want only the PIDs allocated since")
	}
	if g.procs[a] == nil {
		t.Fatalf("new process %d not found by the listing of new PIDs", a)
	}
	if !g.disc.tried || g.disc.base <= 0 {
		t.Fatalf("the listing of new PIDs ran without trying the layout (tried %v, base %d)", g.disc.tried, g.disc.base)
	}
	b, _ := sleeper(t)
	stopA()
	full := run()
	if g.procs[b] == nil {
		t.Errorf("new process %d not found (full listing %v)", b, full)
	}
	if g.procs[a] != nil {
		t.Errorf("process %d exited and was reaped, still tracked", a)
	}
	// Everything the full listing of a second generator finds, this one
	// has too, but for processes that came or went between the two scans.
	ref := New(Options{})
	defer ref.Close()
	ref.noSeek = true
	pool := emit.NewPool(8)
	scan := emit.NewScan(pool, discardSink{pool}, emit.NewTracker(10))
	scan.Start(t.Context(), time.Now().UnixMilli())
	if err := ref.Collect(scan); err != nil {
		t.Fatal(err)
	}
	_ = scan.Finish()
	run()
	for pid := range ref.procs {
		if g.procs[pid] == nil && exists(pid) {
			t.Errorf("process %d, listed in full and still there, not tracked", pid)
		}
	}
}

// TestListNewAcrossPIDWrap makes the kernel wrap its PIDs (ns_last_pid set
// near pid_max) between two scans: the processes created on both sides of
// the wrap are found.
func TestListNewAcrossPIDWrap(t *testing.T) {
	const nsLastPID = "/proc/sys/kernel/ns_last_pid"
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Skipf("no pid_max: %v", err)
	}
	max, err := strconv.Atoi(string(pidMax[:len(pidMax)-1]))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(nsLastPID, os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot set %s to make PIDs wrap (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE): %v", nsLastPID, err)
	}
	defer f.Close()
	g, run := seekGen(t)
	// Processes are created here from now on: above max-8, then from the
	// bottom.
	if _, err := f.WriteString(strconv.Itoa(max - 8)); err != nil {
		t.Skipf("cannot set %s: %v", nsLastPID, err)
	}
	var pids []int32
	for range 16 {
		pid, _ := sleeper(t)
		pids = append(pids, pid)
	}
	high, low := 0, 0
	for _, p := range pids {
		if int(p) > max-10 {
			high++
		} else {
			low++
		}
	}
	if high == 0 || low == 0 {
		t.Skipf("PIDs did not wrap (others forked in between?): %v", pids)
	}
	if run() {
		t.Fatal("scan listed every process; want the two ranges of new PIDs")
	}
	for _, p := range pids {
		if g.procs[p] == nil {
			t.Errorf("process %d (created across the wrap of PIDs %v) not found", p, pids)
		}
	}
}

func exists(pid int32) bool {
	return syscall.Kill(int(pid), 0) == nil
}

// TestTryBase: the layout learnt from a listing is tried by seeking to the
// test's own PID; a wrong one turns seeking off.
func TestTryBase(t *testing.T) {
	g, _ := seekGen(t)
	base := g.disc.base
	for _, tc := range []struct {
		base int64
		want int64
	}{{base, base}, {base + 3, -1}, {base - 1, -1}} {
		d := dirReader{fd: -1, buf: make([]byte, 8<<10)}
		if err := d.open([]byte("/proc\x00")); err != nil {
			t.Fatal(err)
		}
		disc := discovery{base: tc.base}
		disc.tryBase(&d)
		d.close()
		if disc.base != tc.want || !disc.tried {
			t.Errorf("tryBase with base %d: base %d, tried %v; want %d, true", tc.base, disc.base, disc.tried, tc.want)
		}
	}
}
