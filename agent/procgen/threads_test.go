package procgen

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
