package procgen

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// threadFiles returns the task/TID files of one thread of process pid.
func threadFiles(pid, tid int, state byte, utime, start uint64, sched string, vol uint64) map[string]string {
	d := strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/"
	return map[string]string{
		d + "stat":      statLine(tid, "pool", state, 1, utime, 10, start),
		d + "status":    statusText("pool", 1000, vol, 1),
		d + "schedstat": sched,
	}
}

// threadTree writes process 40 with threads 40, 41 and 42 (num_threads 3)
// and a single-threaded process 50, every file with a schedstat.
func threadTree(t *testing.T) string {
	t.Helper()
	root := newRoot(t)
	files := procFiles(40, "pool", 'S', 1, 300, 500, "pool\x00")
	files["40/stat"] = withThreads(files["40/stat"], 3)
	files["40/schedstat"] = "1000 20 7\n"
	for k, v := range procFiles(50, "one", 'S', 1, 100, 600, "one\x00") {
		files[k] = v
	}
	files["50/schedstat"] = "2000 20 7\n"
	for _, m := range []map[string]string{
		threadFiles(40, 40, 'S', 100, 500, "1000 20 7\n", 5),
		threadFiles(40, 41, 'S', 110, 501, "1100 20 8\n", 6),
		threadFiles(40, 42, 'S', 120, 502, "1200 20 9\n", 7),
		threadFiles(50, 50, 'S', 100, 600, "2000 20 7\n", 5),
	} {
		for k, v := range m {
			files[k] = v
		}
	}
	writeTree(t, root, files)
	return root
}

// A generator that gates, carries and lists only to find new threads
// writes exactly what one that reads and builds everything writes, as
// threads rest, run, exit and start, when a TID is reused, and when the
// refreshes fall due (every third scan writes every series).
func TestThreadsSavingsWriteWhatReadingWrites(t *testing.T) {
	root := threadTree(t)
	saving := newScanner(New(Options{ProcRoot: root, Threads: true}), 3)
	reading := newScanner(New(Options{ProcRoot: root, Threads: true}), 3)
	reading.g.noGate, reading.g.noCarry, reading.g.noSeek = true, true, true
	stat40 := func(n int) string { return withThreads(statLine(40, "pool", 'S', 1, 300, 10, 500), n) }
	steps := []struct {
		what      string
		write     map[string]string
		drop      string
		listed    bool // the saving generator lists 40's task directory
		wantTIDs  string
		wantLines []string // lines the scan writes, among others
	}{
		{what: "first scan", listed: true, wantTIDs: "40 41 42"},
		{what: "second scan: the gate's basis", wantTIDs: "40 41 42"},
		{what: "unchanged", wantTIDs: "40 41 42"},
		{what: "unchanged, other refresh phase", wantTIDs: "40 41 42"},
		{what: "41 ran", wantTIDs: "40 41 42",
			write:     mergeFiles(threadFiles(40, 41, 'S', 111, 501, "1150 25 9\n", 9)),
			wantLines: []string{`proc_pid_cpu_seconds_total{pid="40",tid="41",mode="user"} 1.11`, `proc_pid_ctxt_switches_total{pid="40",tid="41",kind="voluntary"} 9`}},
		{what: "42 woken, not yet on a CPU: R, schedstat unchanged", wantTIDs: "40 41 42",
			write:     map[string]string{"40/task/42/stat": statLine(42, "pool", 'R', 1, 120, 10, 502)},
			wantLines: []string{`proc_pid_state{pid="40",tid="42",state="running"} 1`, `proc_pid_state{pid="40",tid="42",state="sleeping"} 0`}},
		{what: "42 ran and sleeps again", wantTIDs: "40 41 42",
			write: mergeFiles(threadFiles(40, 42, 'S', 125, 502, "1300 30 10\n", 8))},
		{what: "42 exits", drop: "40/task/42", listed: true, wantTIDs: "40 41",
			write: map[string]string{"40/stat": stat40(2)}},
		{what: "43 starts", listed: true, wantTIDs: "40 41 43",
			write:     mergeFiles(threadFiles(40, 43, 'R', 1, 900, "10 0 1\n", 1), map[string]string{"40/stat": stat40(3)}),
			wantLines: []string{`proc_pid_cpu_seconds_total{pid="40",tid="43",mode="user"} 0.01`}},
		{what: "43's basis", wantTIDs: "40 41 43"},
		{what: "43 still R: its status is read though schedstat did not change", wantTIDs: "40 41 43",
			write:     map[string]string{"40/task/43/status": statusText("pool", 1000, 4, 1)},
			wantLines: []string{`proc_pid_ctxt_switches_total{pid="40",tid="43",kind="voluntary"} 4`}},
		{what: "unchanged after a start", wantTIDs: "40 41 43",
			write: mergeFiles(threadFiles(40, 43, 'S', 2, 900, "20 0 2\n", 5))},
		{what: "unchanged after a start and a run", wantTIDs: "40 41 43"},
		{what: "41 exits and a new thread takes TID 41", listed: true, wantTIDs: "40 41 43",
			write:     mergeFiles(threadFiles(40, 41, 'S', 3, 950, "20 0 1\n", 2)),
			wantLines: []string{`proc_pid_cpu_seconds_total{pid="40",tid="41",mode="user"} 0.03`}},
		{what: "unchanged again", wantTIDs: "40 41 43"},
		{what: "unchanged again, other refresh phase", wantTIDs: "40 41 43"},
		{what: "unchanged again, third refresh phase", wantTIDs: "40 41 43"},
	}
	var all []string // every line of the last three scans
	for i, st := range steps {
		writeTree(t, root, st.write)
		if st.drop != "" {
			if err := os.RemoveAll(filepath.Join(root, st.drop)); err != nil {
				t.Fatal(err)
			}
		}
		_, _, listed0, _ := saving.g.ThreadCounts()
		got, want := saving.cycle(t), reading.cycle(t)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: saving wrote\n%s\nreading wrote\n%s", st.what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, l := range st.wantLines {
			if !hasLine(got, l) {
				t.Errorf("%s: no line %s in\n%s", st.what, l, strings.Join(got, "\n"))
			}
		}
		// 50 is listed on its first scan only; 40 as the step says.
		_, _, listed, _ := saving.g.ThreadCounts()
		wantListed := uint64(0)
		if i == 0 {
			wantListed++
		}
		if st.listed {
			wantListed++
		}
		if listed-listed0 != wantListed {
			t.Errorf("%s: %d task directories listed, want %d", st.what, listed-listed0, wantListed)
		}
		if got := tidsOf(saving.g, 40); got != st.wantTIDs {
			t.Errorf("%s: threads of 40 known %q, want %q", st.what, got, st.wantTIDs)
		}
		if i >= len(steps)-3 {
			all = append(all, got...)
		}
	}
	// The last three scans, one refresh cycle, wrote every series of
	// every thread: 7 per thread, 4 threads.
	if n := len(distinctSeries(grep(all, "tid="))); n != 4*7 {
		t.Errorf("a refresh cycle wrote %d thread series, want 28:\n%s", n, strings.Join(grep(all, "tid="), "\n"))
	}
	if _, carried, _, unlisted := saving.g.ThreadCounts(); carried == 0 || unlisted == 0 {
		t.Errorf("ThreadCounts: %d carried, %d unlisted; want both > 0", carried, unlisted)
	}
	if status, _, _, _ := reading.g.ThreadCounts(); status != 0 {
		t.Errorf("noGate skipped %d thread status reads", status)
	}
}

func mergeFiles(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// tidsOf returns the TIDs g knows for pid, ascending, space-separated.
func tidsOf(g *Generator, pid int32) string {
	p := g.procs[pid]
	if p == nil {
		return ""
	}
	if len(p.threads) != len(p.tids) {
		return "map and order disagree"
	}
	var ids []int
	for tid := range p.threads {
		ids = append(ids, int(tid))
	}
	sortInts(ids)
	var s []string
	for _, id := range ids {
		s = append(s, strconv.Itoa(id))
	}
	return strings.Join(s, " ")
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// distinctSeries returns the series (the line without its value) of ls,
// deduplicated.
func distinctSeries(ls []string) map[string]bool {
	m := map[string]bool{}
	for _, l := range ls {
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			m[l[:i]] = true
		}
	}
	return m
}

// Malformed or vanishing task files are errors that name the file, or
// skipped quietly when the thread is gone; the scan goes on.
func TestThreadsBadInput(t *testing.T) {
	root := threadTree(t)
	sc := newScanner(New(Options{ProcRoot: root, Threads: true}), 1)
	sc.cycle(t)
	sc.cycle(t)
	for _, c := range []struct {
		what    string
		write   map[string]string
		drop    string
		wantErr string // "" for none
		wantTID map[string]int
	}{
		{what: "truncated stat", write: map[string]string{"40/task/41/stat": "41 (pool) S 1 2"},
			wantErr: filepath.Join(root, "40/task/41/stat") + ": line 1:", wantTID: map[string]int{"40": 7, "41": 0, "42": 7}},
		{what: "malformed schedstat: the thread is read in full", write: map[string]string{"40/task/41/stat": statLine(41, "pool", 'S', 1, 110, 10, 501), "40/task/41/schedstat": "x 1 2\n"},
			wantErr: filepath.Join(root, "40/task/41/schedstat") + ": line 1: field 1:", wantTID: map[string]int{"40": 7, "41": 7, "42": 7}},
		{what: "malformed status", write: map[string]string{"40/task/41/schedstat": "5 5 5\n", "40/task/41/status": strings.Replace(statusText("pool", 1000, 6, 1), ":\t6\n", ":\tmany\n", 1)},
			wantErr: filepath.Join(root, "40/task/41/status") + ": line ", wantTID: map[string]int{"40": 7, "41": 5, "42": 7}},
		{what: "thread directory emptied: gone, quietly", drop: "40/task/42/stat",
			write: map[string]string{"40/task/41/status": statusText("pool", 1000, 6, 1), "40/task/41/schedstat": "6 6 6\n"}, wantTID: map[string]int{"40": 7, "41": 7, "42": 0}},
		{what: "task directory gone: quietly", drop: "40/task", wantTID: map[string]int{"40": 0, "41": 0, "42": 0}},
		{what: "task is a file", write: map[string]string{"40/task": "?"},
			wantErr: "cannot list threads: open " + filepath.Join(root, "40/task") + ": not a directory", wantTID: map[string]int{"40": 0}},
	} {
		writeTree(t, root, nil)
		if c.drop != "" {
			if err := os.RemoveAll(filepath.Join(root, c.drop)); err != nil {
				t.Fatal(err)
			}
		}
		writeTree(t, root, c.write)
		sc.scan.Start(t.Context(), 0)
		err := sc.g.Collect(sc.scan)
		if ferr := sc.scan.Finish(); ferr != nil {
			t.Fatal(ferr)
		}
		ls := lines(sc.sink.Take())
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n")) {
			t.Errorf("%s: err = %v, want only %q", c.what, err, c.wantErr)
		}
		for tid, n := range c.wantTID {
			if got := len(grep(ls, `{pid="40",tid="`+tid+`"`)); got != n {
				t.Errorf("%s: thread %s: %d series, want %d", c.what, tid, got, n)
			}
		}
		if got := len(grep(ls, `{pid="50",tid="50"`)); got != 7 {
			t.Errorf("%s: thread 50: %d series, want 7", c.what, got)
		}
	}
}

// liveThread is one thread of a live process as procfs reads it.
type liveThread struct {
	stat   procfs.ProcStat
	status procfs.ProcStatus
}

// liveThreads reads every thread of pid with procfs, independently of the
// generator.
func liveThreads(t *testing.T, pid int) map[string]liveThread {
	t.Helper()
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	ths, err := fs.AllThreads(pid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]liveThread{}
	for _, th := range ths {
		st, err1 := th.Stat()
		status, err2 := th.NewStatus()
		if err1 != nil || err2 != nil {
			continue // exited between the listing and the reads
		}
		out[strconv.Itoa(th.PID)] = liveThread{st, status}
	}
	return out
}

// On the live /proc, with a process whose threads rest, start and exit:
// the series of every thread, as a receiver holds them from the changes
// and refreshes written, equal what procfs reads of the thread's own
// stat and status; a new thread is written in the first scan after it
// started, an exited one is dropped in the first scan after it exited,
// and a refresh cycle writes every series of every thread.
func TestThreadsLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/schedstat"); err != nil {
		t.Skip("no /proc/PID/task/TID/schedstat")
	}
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), threadHelperEnv+"=20")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	out := bufio.NewReader(stdout)
	// command sends cmd (none for the first answer) and returns the TIDs
	// of the helper's answer.
	command := func(cmd string) []string {
		t.Helper()
		if cmd != "" {
			if _, err := io.WriteString(stdin, cmd+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		l, err := out.ReadString('\n')
		f := strings.Fields(l)
		if err != nil || len(f) == 0 || f[0] != "ready" {
			t.Fatalf("helper answered %q, %v; want ready", l, err)
		}
		return f[1:]
	}
	command("")
	pid := c.Process.Pid
	pidS := strconv.Itoa(pid)
	// settle waits until the helper's threads are past their start or
	// end: two reads of every thread alike.
	settle := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !reflect.DeepEqual(liveThreads(t, pid), liveThreads(t, pid)); {
			if time.Now().After(deadline) {
				t.Fatal("the helper's threads do not settle")
			}
		}
	}
	settle()

	g := New(Options{Threads: true})
	t.Cleanup(func() { _ = g.Close() })
	sc := newScanner(g, 3)
	held := map[string]float64{} // the helper's thread series, as a receiver holds them
	scan := func(when string) (written map[string]bool) {
		t.Helper()
		before := liveThreads(t, pid)
		ls := grep(sc.cycle(t), `{pid="`+pidS+`",tid="`)
		after := liveThreads(t, pid)
		written = map[string]bool{}
		for _, l := range ls {
			i := strings.LastIndexByte(l, ' ')
			v, err := strconv.ParseFloat(l[i+1:], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", when, l, err)
			}
			held[l[:i]] = v
			written[l[:i]] = true
		}
		// Every thread there before and after the scan is known, and no
		// other (unless threads came and went during the scan).
		if len(before) == len(after) {
			var ids []string
			for tid := range after {
				ids = append(ids, tid)
			}
			sort.Slice(ids, func(i, j int) bool { return mustAtoi(t, ids[i]) < mustAtoi(t, ids[j]) })
			if got, want := tidsOf(g, int32(pid)), strings.Join(ids, " "); got != want {
				t.Errorf("%s: threads known %q, threads there %q", when, got, want)
			}
		}
		// Threads whose files did not change during the scan have the
		// values procfs reads.
		checked := 0
		for tid, a := range after {
			if b, ok := before[tid]; !ok || !reflect.DeepEqual(a, b) {
				continue
			}
			checked++
			p := func(name string, labels ...string) string {
				return series(name, append([]string{"pid", pidS, "tid", tid}, labels...)...)
			}
			for k, want := range map[string]float64{
				p("proc_pid_cpu_seconds_total", "mode", "user"):           float64(a.stat.UTime) / clkTck,
				p("proc_pid_cpu_seconds_total", "mode", "system"):         float64(a.stat.STime) / clkTck,
				p("proc_pid_minor_faults_total"):                          float64(a.stat.MinFlt),
				p("proc_pid_major_faults_total"):                          float64(a.stat.MajFlt),
				p("proc_pid_ctxt_switches_total", "kind", "voluntary"):    float64(a.status.VoluntaryCtxtSwitches),
				p("proc_pid_ctxt_switches_total", "kind", "nonvoluntary"): float64(a.status.NonVoluntaryCtxtSwitches),
				p("proc_pid_state", "state", stateWords[a.stat.State]):    1,
			} {
				if got, ok := held[k]; !ok || got != want {
					t.Errorf("%s: %s is %v (held %v), procfs reads %v", when, k, got, ok, want)
				}
			}
		}
		if checked < len(after)/2 {
			t.Errorf("%s: only %d of %d threads stood still during the scan", when, checked, len(after))
		}
		return written
	}
	for i := range 4 {
		scan("scan " + strconv.Itoa(i))
	}
	carried := g.threadCarried
	if carried == 0 {
		t.Error("no thread carried over four scans of idle threads")
	}

	// Five threads start: all written in the next scan.
	// The Go runtime may lock a thread it held idle to one of them: that
	// one is not new to the generator.
	before := liveThreads(t, pid)
	started := command("+5")
	settle()
	written := scan("after 5 started")
	for _, tid := range started {
		if _, ok := before[tid]; ok {
			continue
		}
		if k := series("proc_pid_cpu_seconds_total", "pid", pidS, "tid", tid, "mode", "user"); !written[k] {
			t.Errorf("new thread %s not written in the first scan after it started", tid)
		}
	}

	// Five threads exit: dropped in the next scan.
	ended := command("-5")
	for _, tid := range ended {
		waitGone(t, "/proc/"+pidS+"/task/"+tid)
	}
	settle()
	scan("after 5 exited")
	p := g.procs[int32(pid)]
	for _, tid := range ended {
		if p.threads[int32(mustAtoi(t, tid))] != nil {
			t.Errorf("thread %s exited and is still tracked", tid)
		}
	}

	// A refresh cycle (3 scans) writes every series of every thread.
	all := map[string]bool{}
	for i := range 3 {
		for k := range scan("refresh " + strconv.Itoa(i)) {
			all[k] = true
		}
	}
	if n := len(liveThreads(t, pid)); len(all) < 7*n {
		t.Errorf("a refresh cycle wrote %d thread series of %d threads, want %d", len(all), n, 7*n)
	}
	if g.threadCarried == carried {
		t.Error("no thread carried after the starts and exits")
	}
	t.Logf("%d threads, %d carried thread scans", len(p.threads), g.threadCarried)
}

// waitGone waits until path no longer exists.
func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after 10 s", path)
		}
		time.Sleep(time.Millisecond)
	}
}

// A thread that could not be read in one scan is not carried in the next
// from positions two runs old: both generators write the same.
func TestThreadsNoCarryAfterAFailedRead(t *testing.T) {
	root := threadTree(t)
	saving := newScanner(New(Options{ProcRoot: root, Threads: true}), 1000)
	reading := newScanner(New(Options{ProcRoot: root, Threads: true}), 1000)
	reading.g.noGate, reading.g.noCarry, reading.g.noSeek = true, true, true
	cycle := func(sc *scanner) ([]string, error) {
		sc.scan.Start(t.Context(), 0)
		err := sc.g.Collect(sc.scan)
		if ferr := sc.scan.Finish(); ferr != nil {
			t.Fatal(ferr)
		}
		return lines(sc.sink.Take()), err
	}
	good := statLine(41, "pool", 'S', 1, 110, 10, 501)
	// 43 starts after 41's failed scan, so that the tracker's positions
	// move between the runs.
	for i, files := range []map[string]string{nil, nil, nil,
		{"40/task/41/stat": "41 (pool) S 1"},
		mergeFiles(map[string]string{"40/task/41/stat": good, "40/stat": withThreads(statLine(40, "pool", 'S', 1, 300, 10, 500), 4)},
			threadFiles(40, 39, 'S', 1, 400, "1 1 1\n", 1)),
		nil, nil} {
		writeTree(t, root, files)
		got, gerr := cycle(saving)
		want, werr := cycle(reading)
		if (gerr == nil) != (werr == nil) || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("scan %d: saving wrote (%v)\n%s\nreading wrote (%v)\n%s", i, gerr, strings.Join(got, "\n"), werr, strings.Join(want, "\n"))
		}
	}
}
