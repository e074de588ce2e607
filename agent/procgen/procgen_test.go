package procgen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestOptionsValidate(t *testing.T) {
	f := func(o Options, wantErr string) {
		t.Helper()
		err := o.Validate()
		if wantErr == "" && err != nil {
			t.Errorf("%+v: %v", o, err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%+v: err = %v, want %q", o, err, wantErr)
		}
	}
	f(Options{}, "")
	f(Options{ProcRoot: "/host/proc", Threads: true, CmdlineMaxBytes: 4096}, "")
	f(Options{CmdlineMaxBytes: -1}, "CmdlineMaxBytes")
	f(Options{CmdlineMaxBytes: 1 << 20}, "CmdlineMaxBytes")
	f(Options{ProcRoot: "/pr\x00oc"}, "NUL")
	if d := (Options{}).withDefaults(); d.ProcRoot != "/proc" || d.CmdlineMaxBytes != 256 || d.Threads {
		t.Errorf("defaults: %+v", d)
	}
	if New(Options{}).Name() != "process" {
		t.Error("Name")
	}
}

func TestCollectSeries(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(42, "bash", 'S', 1, 250, 4200, "/bin/bash\x00-l\x00"))
	out, err := emit.Collect(New(Options{ProcRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	page := strconv.Itoa(os.Getpagesize() * 2750)
	want := []string{
		`proc_pid_cpu_seconds_total{pid="42",mode="system"} 0.1`,
		`proc_pid_cpu_seconds_total{pid="42",mode="user"} 2.5`,
		`proc_pid_ctxt_switches_total{pid="42",kind="nonvoluntary"} 1`,
		`proc_pid_ctxt_switches_total{pid="42",kind="voluntary"} 5`,
		`proc_pid_info{pid="42",comm="bash",ppid="1",uid="1000",cmdline="/bin/bash -l"} 1`,
		`proc_pid_io_read_bytes_total{pid="42"} 4096`,
		`proc_pid_io_write_bytes_total{pid="42"} 8192`,
		`proc_pid_major_faults_total{pid="42"} 2`,
		`proc_pid_minor_faults_total{pid="42"} 100`,
		`proc_pid_resident_memory_bytes{pid="42"} ` + page,
		`proc_pid_start_time_seconds{pid="42"} 1700000042`,
		`proc_pid_state{pid="42",state="sleeping"} 1`,
		`proc_pid_threads{pid="42"} 1`,
		`proc_pid_virtual_memory_bytes{pid="42"} 172032000`,
	}
	got := lines(out)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChurn(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(10, "old", 'S', 1, 100, 500, "old\x00"))
	writeTree(t, root, procFiles(11, "gone", 'S', 1, 100, 600, "gone\x00"))
	g := New(Options{ProcRoot: root})
	sc := newScanner(g, 1000)
	if ls := sc.cycle(t); len(grep(ls, `pid="11"`)) == 0 || g.Tracked() != 2 {
		t.Fatalf("cycle 1: tracked %d\n%s", g.Tracked(), strings.Join(ls, "\n"))
	}

	// 11 exits, 12 appears, 10 is reused by a new process.
	if err := os.RemoveAll(filepath.Join(root, "11")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, procFiles(12, "new", 'R', 1, 100, 700, "new\x00"))
	writeTree(t, root, procFiles(10, "reused", 'S', 1, 100, 800, "reused\x00"))
	ls := sc.cycle(t)
	if g.Tracked() != 2 {
		t.Errorf("tracked %d after churn, want 2", g.Tracked())
	}
	if l := grep(ls, `pid="11"`); len(l) != 0 {
		t.Errorf("vanished pid 11 still emitted: %q", l)
	}
	if len(grep(ls, `pid="12"`)) != 14 {
		t.Errorf("new pid 12: want all 14 series:\n%s", strings.Join(grep(ls, `pid="12"`), "\n"))
	}
	if l := grep(ls, `comm="old"`); len(l) != 0 {
		t.Errorf("reused pid carried over the old info set: %q", l)
	}
	if !hasLine(ls, `proc_pid_info{pid="10",comm="reused",ppid="1",uid="1000",cmdline="reused"} 1`) {
		t.Errorf("reused pid: no new info set:\n%s", strings.Join(grep(ls, "info"), "\n"))
	}
	if !hasLine(ls, `proc_pid_start_time_seconds{pid="10"} 1700000008`) {
		t.Errorf("reused pid: start time not emitted:\n%s", strings.Join(grep(ls, `pid="10"`), "\n"))
	}
	if n := sc.tracker.Len(); n != 28 {
		t.Errorf("tracker holds %d series, want 28 (14 per live process)", n)
	}

	// Everything exits: nothing is left behind.
	for _, pid := range []string{"10", "12"} {
		if err := os.RemoveAll(filepath.Join(root, pid)); err != nil {
			t.Fatal(err)
		}
	}
	if ls := sc.cycle(t); len(ls) != 0 || g.Tracked() != 0 || sc.tracker.Len() != 0 {
		t.Errorf("all gone: %d lines, %d tracked, %d series in tracker", len(ls), g.Tracked(), sc.tracker.Len())
	}
}

func TestInfoAndStateChange(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(7, "sh", 'S', 1, 100, 500, "/bin/sh\x00"))
	g := New(Options{ProcRoot: root})
	sc := newScanner(g, 1000)
	sc.cycle(t)

	// exec: comm and cmdline change; the state too.
	writeTree(t, root, procFiles(7, "python3", 'R', 1, 100, 500, "python3\x00app.py\x00"))
	ls := sc.cycle(t)
	want := []string{
		`proc_pid_info{pid="7",comm="python3",ppid="1",uid="1000",cmdline="python3 app.py"} 1`,
		`proc_pid_info{pid="7",comm="sh",ppid="1",uid="1000",cmdline="/bin/sh"} 0`,
		`proc_pid_state{pid="7",state="running"} 1`,
		`proc_pid_state{pid="7",state="sleeping"} 0`,
	}
	if strings.Join(ls, "\n") != strings.Join(want, "\n") {
		t.Errorf("after exec got\n%s\nwant\n%s", strings.Join(ls, "\n"), strings.Join(want, "\n"))
	}

	// Nothing changes: the 0 is not repeated, nothing is written.
	if ls := sc.cycle(t); len(ls) != 0 {
		t.Errorf("steady state wrote\n%s", strings.Join(ls, "\n"))
	}

	// A cmdline rewrite without a comm change is not seen (cmdline is only
	// read on comm changes); reparenting is.
	writeTree(t, root, procFiles(7, "python3", 'R', 99, 100, 500, "rewritten\x00"))
	ls = sc.cycle(t)
	want = []string{
		`proc_pid_info{pid="7",comm="python3",ppid="1",uid="1000",cmdline="python3 app.py"} 0`,
		`proc_pid_info{pid="7",comm="python3",ppid="99",uid="1000",cmdline="python3 app.py"} 1`,
	}
	if strings.Join(ls, "\n") != strings.Join(want, "\n") {
		t.Errorf("after reparent got\n%s\nwant\n%s", strings.Join(ls, "\n"), strings.Join(want, "\n"))
	}
}

func TestChangedOnly(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(5, "w", 'S', 1, 100, 500, "w\x00"))
	writeTree(t, root, procFiles(6, "v", 'S', 1, 100, 600, "v\x00"))
	g := New(Options{ProcRoot: root})
	sc := newScanner(g, 1000)
	if ls := sc.cycle(t); len(ls) != 28 {
		t.Fatalf("first cycle: %d lines, want 28", len(ls))
	}
	if ls := sc.cycle(t); len(ls) != 0 {
		t.Fatalf("unchanged: %d lines", len(ls))
	}
	writeTree(t, root, procFiles(5, "w", 'S', 1, 175, 500, "w\x00"))
	ls := sc.cycle(t)
	if strings.Join(ls, "\n") != `proc_pid_cpu_seconds_total{pid="5",mode="user"} 1.75` {
		t.Errorf("one counter changed, got\n%s", strings.Join(ls, "\n"))
	}

	// With fullEvery 2 each series is refreshed every other cycle, spread:
	// two cycles together write everything once.
	sc2 := newScanner(New(Options{ProcRoot: root}), 2)
	sc2.cycle(t)
	a, b := sc2.cycle(t), sc2.cycle(t)
	if len(a)+len(b) != 28 || len(a) == 0 || len(b) == 0 {
		t.Errorf("refresh spread: %d + %d lines, want 28 in two non-empty parts", len(a), len(b))
	}
}

func TestEscaping(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(3, "we\"ird\\ (x) y", 'S', 1, 100, 500, "/opt/a\"b\\c\x00d\ne\x00"))
	writeTree(t, root, procFiles(4, "bad\xff\xfe", 'S', 1, 100, 500, "x\xffy\x00"))
	out, err := emit.Collect(New(Options{ProcRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(out)
	for _, w := range []string{
		`proc_pid_info{pid="3",comm="we\"ird\\ (x) y",ppid="1",uid="1000",cmdline="/opt/a\"b\\c d\ne"} 1`,
		`proc_pid_info{pid="4",comm="bad\uFFFD\uFFFD",ppid="1",uid="1000",cmdline="x\uFFFDy"} 1`,
	} {
		w = strings.ReplaceAll(w, `\uFFFD`, "\uFFFD")
		if !hasLine(ls, w) {
			t.Errorf("missing %s in\n%s", w, strings.Join(grep(ls, "info"), "\n"))
		}
	}
}

func TestCmdlineCap(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(3, "java", 'S', 1, 100, 500, "java\x00-cp\x00élément.jar\x00"))
	f := func(max int, want string) {
		t.Helper()
		out, err := emit.Collect(New(Options{ProcRoot: root, CmdlineMaxBytes: max}))
		if err != nil {
			t.Fatal(err)
		}
		w := `proc_pid_info{pid="3",comm="java",ppid="1",uid="1000",cmdline="` + want + `"} 1`
		if ls := lines(out); !hasLine(ls, w) {
			t.Errorf("max %d: want %s in\n%s", max, w, strings.Join(grep(ls, "info"), "\n"))
		}
	}
	f(0, "java -cp élément.jar") // default 256
	f(8, "java -cp")
	f(9, "java -cp ")
	f(10, "java -cp ") // é is 2 bytes: not split
	f(11, "java -cp é")
	f(20, "java -cp élément.j")
	f(22, "java -cp élément.jar")
}

func TestThreads(t *testing.T) {
	root := newRoot(t)
	files := procFiles(20, "load", 'S', 1, 300, 500, "load\x00")
	files["20/task/20/stat"] = statLine(20, "load", 'S', 1, 100, 10, 500)
	files["20/task/20/status"] = statusText("load", 1000, 7, 3)
	files["20/task/21/stat"] = statLine(21, "load", 'R', 1, 200, 20, 501)
	files["20/task/21/status"] = statusText("load", 1000, 9, 4)
	writeTree(t, root, files)

	out, err := emit.Collect(New(Options{ProcRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	if l := grep(lines(out), "tid="); len(l) != 0 {
		t.Errorf("threads off: got thread series %q", l)
	}

	g := New(Options{ProcRoot: root, Threads: true})
	sc := newScanner(g, 1000)
	ls := grep(sc.cycle(t), "tid=")
	want := []string{
		`proc_pid_cpu_seconds_total{pid="20",tid="20",mode="system"} 0.1`,
		`proc_pid_cpu_seconds_total{pid="20",tid="20",mode="user"} 1`,
		`proc_pid_cpu_seconds_total{pid="20",tid="21",mode="system"} 0.2`,
		`proc_pid_cpu_seconds_total{pid="20",tid="21",mode="user"} 2`,
		`proc_pid_ctxt_switches_total{pid="20",tid="20",kind="nonvoluntary"} 3`,
		`proc_pid_ctxt_switches_total{pid="20",tid="20",kind="voluntary"} 7`,
		`proc_pid_ctxt_switches_total{pid="20",tid="21",kind="nonvoluntary"} 4`,
		`proc_pid_ctxt_switches_total{pid="20",tid="21",kind="voluntary"} 9`,
		`proc_pid_major_faults_total{pid="20",tid="20"} 2`,
		`proc_pid_major_faults_total{pid="20",tid="21"} 2`,
		`proc_pid_minor_faults_total{pid="20",tid="20"} 100`,
		`proc_pid_minor_faults_total{pid="20",tid="21"} 100`,
		`proc_pid_state{pid="20",tid="20",state="sleeping"} 1`,
		`proc_pid_state{pid="20",tid="21",state="running"} 1`,
	}
	if strings.Join(ls, "\n") != strings.Join(want, "\n") {
		t.Errorf("threads on got\n%s\nwant\n%s", strings.Join(ls, "\n"), strings.Join(want, "\n"))
	}
	if g.TrackedThreads() != 2 {
		t.Errorf("tracked threads %d", g.TrackedThreads())
	}

	// Thread 21 exits and 20 goes to sleep on disk.
	if err := os.RemoveAll(filepath.Join(root, "20/task/21")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, map[string]string{"20/task/20/stat": statLine(20, "load", 'D', 1, 100, 10, 500)})
	ls = sc.cycle(t)
	want = []string{
		`proc_pid_state{pid="20",tid="20",state="disk-sleep"} 1`,
		`proc_pid_state{pid="20",tid="20",state="sleeping"} 0`,
	}
	if strings.Join(ls, "\n") != strings.Join(want, "\n") {
		t.Errorf("after thread exit got\n%s\nwant\n%s", strings.Join(ls, "\n"), strings.Join(want, "\n"))
	}
	if g.TrackedThreads() != 1 {
		t.Errorf("tracked threads %d after exit, want 1", g.TrackedThreads())
	}
}

func TestBadInput(t *testing.T) {
	root := newRoot(t)
	writeTree(t, root, procFiles(1, "ok", 'S', 0, 100, 5, "init\x00"))
	// Truncated stat: error naming the file and line, nothing emitted.
	writeTree(t, root, map[string]string{"2/stat": "2 (trunc) S 1 2 3"})
	// Malformed io: error naming io; the rest is emitted.
	files := procFiles(3, "badio", 'S', 1, 100, 5, "")
	files["3/io"] = "read_bytes: 12x\nwrite_bytes: 1\n"
	writeTree(t, root, files)
	// Zombie: no io file, empty cmdline. Emitted without io, no error.
	files = procFiles(4, "zombie", 'Z', 1, 100, 5, "")
	delete(files, "4/io")
	writeTree(t, root, files)
	// Vanished between listing and reading: an empty directory.
	writeTree(t, root, map[string]string{"5/.keep": ""})
	// No status: no ctxt, no info; the rest is emitted.
	files = procFiles(6, "nostatus", 'S', 1, 100, 5, "")
	delete(files, "6/status")
	writeTree(t, root, files)
	// Non-numeric names are skipped.
	writeTree(t, root, map[string]string{"self/stat": "garbage", "net/dev": "x", "0x12/stat": "y"})

	out, err := emit.Collect(New(Options{ProcRoot: root}))
	if err == nil {
		t.Fatal("want an error for the malformed files")
	}
	msg := err.Error()
	for _, w := range []string{filepath.Join(root, "2/stat") + ": line 1:", filepath.Join(root, "3/io") + ": line 1:"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not name %q", msg, w)
		}
	}
	if strings.Count(msg, "\n") != 1 {
		t.Errorf("want exactly 2 errors, got %q", msg)
	}
	ls := lines(out)
	count := func(pid string) int { return len(grep(ls, `{pid="`+pid+`"`)) }
	for pid, want := range map[string]int{"1": 14, "2": 0, "3": 12, "4": 12, "5": 0, "6": 11} {
		if got := count(pid); got != want {
			t.Errorf("pid %s: %d series, want %d:\n%s", pid, got, want, strings.Join(grep(ls, `{pid="`+pid+`"`), "\n"))
		}
	}
	if !hasLine(ls, `proc_pid_state{pid="4",state="zombie"} 1`) || !hasLine(ls, `proc_pid_info{pid="4",comm="zombie",ppid="1",uid="1000",cmdline=""} 1`) {
		t.Errorf("zombie series missing:\n%s", strings.Join(grep(ls, `pid="4"`), "\n"))
	}
}

func TestMissingRootAndBtime(t *testing.T) {
	if _, err := emit.Collect(New(Options{ProcRoot: filepath.Join(t.TempDir(), "nope")})); err == nil {
		t.Error("missing root: want error")
	}
	root := t.TempDir() // no stat file: start time left out, error says so
	writeTree(t, root, procFiles(9, "x", 'S', 1, 1, 1, ""))
	out, err := emit.Collect(New(Options{ProcRoot: root}))
	if err == nil || !strings.Contains(err.Error(), "boot time") {
		t.Errorf("no btime: err = %v", err)
	}
	if ls := lines(out); len(ls) != 13 || len(grep(ls, "start_time")) != 0 {
		t.Errorf("no btime: want 13 series without start time, got\n%s", strings.Join(ls, "\n"))
	}
}

func TestRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	g := New(Options{Threads: true})
	defer g.Close()
	out, err := emit.Collect(g)
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	ls := lines(out)
	if len(grep(ls, `proc_pid_info{pid="`+self+`"`)) != 1 || len(grep(ls, `proc_pid_cpu_seconds_total{pid="`+self+`",tid=`)) < 2 {
		t.Errorf("own process missing from /proc scan (%d lines)", len(ls))
	}
	if g.Tracked() < 1 {
		t.Error("nothing tracked")
	}
}

func TestShrinkAfterStorm(t *testing.T) {
	g := New(Options{ProcRoot: t.TempDir()})
	for pid := int32(1); pid <= 5000; pid++ {
		g.procs[pid] = &proc{}
	}
	g.shrink()
	if g.peak != 5000 {
		t.Fatalf("peak %d", g.peak)
	}
	for pid := int32(101); pid <= 5000; pid++ {
		delete(g.procs, pid)
	}
	before := g.procs
	g.shrink()
	if g.peak != 100 || len(g.procs) != 100 {
		t.Errorf("after storm: peak %d, %d procs", g.peak, len(g.procs))
	}
	before[-1] = nil // a rebuilt map is a different map
	if _, ok := g.procs[-1]; ok {
		t.Error("map was not rebuilt")
	}
}

// On the real /proc the generator keeps the descriptors of stat, status
// and io open between scans: values read through them are current, a
// process that exits gives its descriptors back, and Close closes the
// rest.
func TestKeptDescriptors(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := openFDs()
	// A shell that waits on a short sleep over and over: its one thread
	// switches voluntarily at every wait, so its count always grows.
	child := exec.Command("sh", "-c", "while :; do sleep 0.005; done")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	g := New(Options{})
	if g.fdMax == 0 {
		t.Skip("the open files limit is below 8192 here; descriptors are not kept")
	}
	sc := newScanner(g, 1)
	cpid := strconv.Itoa(child.Process.Pid)
	ctxt := func(ls []string) float64 {
		t.Helper()
		for _, l := range grep(ls, `proc_pid_ctxt_switches_total{pid="`+cpid+`",kind="voluntary"}`) {
			v, err := strconv.ParseFloat(strings.Fields(l)[1], 64)
			if err == nil {
				return v
			}
		}
		t.Fatalf("no voluntary context switches for the child")
		return 0
	}
	first := sc.cycle(t)
	kept := g.kept
	if kept < 2*g.Tracked() || len(grep(first, `proc_pid_info{pid="`+strconv.Itoa(child.Process.Pid)+`"`)) != 1 {
		t.Fatalf("kept %d descriptors for %d processes, child listed %d times; want 2 or 3 each and the child",
			kept, g.Tracked(), len(grep(first, `proc_pid_info{pid="`+strconv.Itoa(child.Process.Pid)+`"`)))
	}
	time.Sleep(50 * time.Millisecond) // several waits of the child
	if a, b := ctxt(first), ctxt(sc.cycle(t)); b <= a {
		t.Fatalf("context switches read through a kept descriptor went %v -> %v; want them to grow", a, b)
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	sc.cycle(t)
	if _, ok := g.procs[int32(child.Process.Pid)]; ok {
		t.Fatalf("the child is still tracked after it exited")
	}
	held := 0
	for _, p := range g.procs {
		for _, fd := range p.fds {
			if fd != 0 {
				held++
			}
		}
	}
	if held != g.kept {
		t.Fatalf("the tracked processes hold %d descriptors; the generator counts %d", held, g.kept)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if g.kept != 0 {
		t.Fatalf("kept = %d after Close", g.kept)
	}
	if after := openFDs(); after > before {
		t.Fatalf("%d descriptors open after Close; %d before", after, before)
	}
}
