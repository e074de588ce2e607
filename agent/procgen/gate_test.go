package procgen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ioText returns an io file with the given read and write bytes.
func ioText(rd, wr uint64) string {
	return "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: " + strconv.FormatUint(rd, 10) +
		"\nwrite_bytes: " + strconv.FormatUint(wr, 10) + "\ncancelled_write_bytes: 0\n"
}

// withThreads sets the num_threads field of a statLine.
func withThreads(stat string, n int) string {
	return strings.Replace(stat, " 20 0 1 0 ", " 20 0 "+strconv.Itoa(n)+" 0 ", 1)
}

// gated returns the ctxt, io and info lines of pid in ls, the series the
// gate may write without reading, joined for comparison.
func gated(ls []string, pid string) string {
	var out []string
	for _, l := range grep(ls, `{pid="`+pid+`"`) {
		if strings.Contains(l, "tid=") {
			continue
		}
		for _, m := range []string{mCtxt, mIORead, mIOWrite, mInfo} {
			if strings.HasPrefix(l, m+"{") {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// gateWant is what gated returns for a process 30 of procFiles with the
// given status and io values.
func gateWant(uid, vol, nonvol, rd, wr uint64) string {
	u := strconv.FormatUint(uid, 10)
	f := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return strings.Join([]string{
		`proc_pid_ctxt_switches_total{pid="30",kind="nonvoluntary"} ` + f(nonvol),
		`proc_pid_ctxt_switches_total{pid="30",kind="voluntary"} ` + f(vol),
		`proc_pid_info{pid="30",comm="idle",ppid="1",uid="` + u + `",cmdline="idle"} 1`,
		`proc_pid_io_read_bytes_total{pid="30"} ` + f(rd),
		`proc_pid_io_write_bytes_total{pid="30"} ` + f(wr),
	}, "\n")
}

// gateTree writes process 30 with the given stat state and thread count,
// schedstat, status and io, and returns a scanner that writes every series
// every cycle, so that a value written again shows.
func gateTree(t *testing.T) (root string, sc *scanner) {
	t.Helper()
	root = newRoot(t)
	files := procFiles(30, "idle", 'S', 1, 100, 500, "idle\x00")
	files["30/schedstat"] = "1000 20 7\n"
	files["30/io"] = ioText(4096, 8192)
	writeTree(t, root, files)
	return root, newScanner(New(Options{ProcRoot: root}), 1)
}

func TestGateSkipsUnchanged(t *testing.T) {
	root, sc := gateTree(t)
	g := sc.g
	step := func(files map[string]string, want string, wantStatus, wantIO uint64) {
		t.Helper()
		writeTree(t, root, files)
		ls := sc.cycle(t)
		if got := gated(ls, "30"); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
		if st, io := g.SkippedReads(); st != wantStatus || io != wantIO {
			t.Errorf("SkippedReads = %d, %d; want %d, %d", st, io, wantStatus, wantIO)
		}
	}
	step(nil, gateWant(1000, 5, 1, 4096, 8192), 0, 0)
	step(nil, gateWant(1000, 5, 1, 4096, 8192), 0, 0) // the gate's basis
	// status and io change, schedstat does not: the files are not read,
	// the values of the last scan are written again.
	changed := map[string]string{"30/status": statusText("idle", 2000, 99, 9), "30/io": ioText(1, 2)}
	step(changed, gateWant(1000, 5, 1, 4096, 8192), 1, 1)
	step(nil, gateWant(1000, 5, 1, 4096, 8192), 2, 2)
	// The leader was put on a CPU: everything is read, and the uid change
	// shows as it does without the gate.
	uidChange := strings.Replace(gateWant(2000, 99, 9, 1, 2), "\nproc_pid_info",
		"\n"+`proc_pid_info{pid="30",comm="idle",ppid="1",uid="1000",cmdline="idle"} 0`+"\nproc_pid_info", 1)
	step(map[string]string{"30/schedstat": "1000 20 8\n"}, uidChange, 2, 2)
	// Each field of schedstat alone lets the reads through: the runtime
	// grows when a task that was on a CPU at the last read leaves it.
	for i, sched := range []string{"1001 20 8\n", "1001 21 8\n"} {
		vol := uint64(100 + i)
		step(map[string]string{"30/schedstat": sched, "30/status": statusText("idle", 2000, vol, 9), "30/io": ioText(vol, 2)},
			gateWant(2000, vol, 9, vol, 2), 2, 2)
	}
	step(map[string]string{"30/status": statusText("idle", 2000, 7, 7)}, gateWant(2000, 101, 9, 101, 2), 3, 3)
	if g.noGate {
		t.Fatal("gate off by default")
	}
}

// A leader that the last scan saw running may still be on its CPU,
// without a new pcount or runtime: its status is read.
func TestGateRunningLeaderIsRead(t *testing.T) {
	root, sc := gateTree(t)
	running := statLine(30, "idle", 'R', 1, 100, 10, 500)
	writeTree(t, root, map[string]string{"30/stat": running})
	sc.cycle(t)
	sc.cycle(t)
	writeTree(t, root, map[string]string{"30/status": statusText("idle", 1000, 50, 1)})
	if got, want := gated(sc.cycle(t), "30"), gateWant(1000, 50, 1, 4096, 8192); got != want {
		t.Errorf("after R: got\n%s\nwant\n%s", got, want)
	}
	// Asleep now, but R at the last scan: read once more.
	writeTree(t, root, map[string]string{"30/stat": statLine(30, "idle", 'S', 1, 100, 10, 500),
		"30/status": statusText("idle", 1000, 51, 1)})
	if got, want := gated(sc.cycle(t), "30"), gateWant(1000, 51, 1, 4096, 8192); got != want {
		t.Errorf("R then S: got\n%s\nwant\n%s", got, want)
	}
	// S at the last scan and schedstat unchanged: skipped.
	writeTree(t, root, map[string]string{"30/status": statusText("idle", 1000, 52, 1)})
	if got, want := gated(sc.cycle(t), "30"), gateWant(1000, 51, 1, 4096, 8192); got != want {
		t.Errorf("S then S: got\n%s\nwant\n%s", got, want)
	}
}

// io sums all threads, which may run while the leader sleeps: a process
// with more than one thread, now or at the last scan, has its io read.
func TestGateMultiThreadedReadsIO(t *testing.T) {
	root, sc := gateTree(t)
	two := withThreads(statLine(30, "idle", 'S', 1, 100, 10, 500), 2)
	one := statLine(30, "idle", 'S', 1, 100, 10, 500)
	sc.cycle(t)
	sc.cycle(t)
	f := func(stat string, rd uint64, wantRd uint64) {
		t.Helper()
		writeTree(t, root, map[string]string{"30/stat": stat, "30/io": ioText(rd, 8192),
			"30/status": statusText("idle", 1000, rd, 1)})
		// status is the leader's own: skipped all along.
		if got, want := gated(sc.cycle(t), "30"), gateWant(1000, 5, 1, wantRd, 8192); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	}
	f(two, 1, 1) // one thread at the last scan, two now
	f(two, 2, 2) // two at both
	f(one, 3, 3) // two at the last scan, one now
	f(one, 4, 3) // one at both: skipped
	if st, io := sc.g.SkippedReads(); st != 4 || io != 1 {
		t.Errorf("SkippedReads = %d, %d; want 4, 1", st, io)
	}
	if n, ok := withThreads(one, 2), strings.Contains(two, " 20 0 2 0 "); n != two || !ok {
		t.Fatal("withThreads does not set num_threads")
	}
}

// Without a usable schedstat everything is read every scan; malformed
// content is reported with its file and line.
func TestGateWithoutSchedstat(t *testing.T) {
	f := func(sched, wantErr string) {
		t.Helper()
		root, sc := gateTree(t)
		if sched == "" {
			if err := os.Remove(filepath.Join(root, "30/schedstat")); err != nil {
				t.Fatal(err)
			}
		} else {
			writeTree(t, root, map[string]string{"30/schedstat": sched})
		}
		for i := uint64(1); i <= 4; i++ {
			writeTree(t, root, map[string]string{"30/status": statusText("idle", 1000, i, 1), "30/io": ioText(i, 8192)})
			sc.scan.Start(t.Context(), 0)
			err := sc.g.Collect(sc.scan)
			if ferr := sc.scan.Finish(); ferr != nil {
				t.Fatal(ferr)
			}
			if wantErr == "" && err != nil {
				t.Fatalf("%q: %v", sched, err)
			}
			if wantErr != "" && (err == nil || !strings.Contains(err.Error(), filepath.Join(root, "30/schedstat")+": "+wantErr)) {
				t.Fatalf("%q: err = %v, want the file and %q", sched, err, wantErr)
			}
			if got, want := gated(lines(sc.sink.Take()), "30"), gateWant(1000, i, 1, i, 8192); got != want {
				t.Errorf("%q scan %d: got\n%s\nwant\n%s", sched, i, got, want)
			}
		}
		if st, io := sc.g.SkippedReads(); st != 0 || io != 0 {
			t.Errorf("%q: SkippedReads = %d, %d; want 0, 0", sched, st, io)
		}
	}
	f("", "")                                  // no file (no CONFIG_SCHED_INFO)
	f("0 0 0\n", "")                           // sched_info off
	f("1000 x 7\n", "line 1: field 2:")        // malformed
	f("1000 20\n", "line 1: 2 fields, want 3") // truncated
	f("1000 20 -7\n", "line 1: field 3:")      // negative
	f(" ___\n< moo >\n", "line 1: field 1:")   // procfs's cow
}

func TestGateOff(t *testing.T) {
	root, sc := gateTree(t)
	sc.g.noGate = true
	sc.cycle(t)
	sc.cycle(t)
	writeTree(t, root, map[string]string{"30/status": statusText("idle", 1000, 9, 1)})
	if got, want := gated(sc.cycle(t), "30"), gateWant(1000, 9, 1, 4096, 8192); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// On the live /proc: a child that works has its context switches and I/O
// move through the gate; an idle child gets exactly the values a
// generator without the gate reads, and its reads are skipped.
func TestGateLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skip("no /proc/self/schedstat")
	}
	start := func(name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return strconv.Itoa(c.Process.Pid)
	}
	// The shell's own echo truncates and rewrites a page of a file on
	// ext4 or the like: write_bytes grows by a page every round.
	busy := start("sh", "-c", `while :; do echo x > "$0"; sleep 0.005; done`, filepath.Join(t.TempDir(), "f"))
	idle := start("sleep", "3600")
	time.Sleep(100 * time.Millisecond) // both past their exec

	on, off := New(Options{}), New(Options{})
	off.noGate = true
	t.Cleanup(func() { _ = on.Close(); _ = off.Close() })
	scOn, scOff := newScanner(on, 1), newScanner(off, 1)
	value := func(ls []string, prefix string) float64 {
		t.Helper()
		for _, l := range ls {
			if strings.HasPrefix(l, prefix) {
				v, err := strconv.ParseFloat(strings.Fields(l)[len(strings.Fields(l))-1], 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no %s in the scan", prefix)
		return 0
	}
	var first, last []string
	for i := 0; i < 5; i++ {
		lsOn, lsOff := scOn.cycle(t), scOff.cycle(t)
		if got, want := gated(lsOn, idle), gated(lsOff, idle); got != want || got == "" {
			t.Fatalf("scan %d, idle child: gated\n%s\nungated\n%s", i, got, want)
		}
		if i == 0 {
			first = lsOn
		}
		last = lsOn
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range []string{
		`proc_pid_ctxt_switches_total{pid="` + busy + `",kind="voluntary"}`,
		`proc_pid_io_write_bytes_total{pid="` + busy + `"}`,
	} {
		if a, b := value(first, m), value(last, m); b <= a {
			t.Errorf("busy child: %s went %v -> %v; want it to grow", m, a, b)
		}
	}
	if st, io := on.SkippedReads(); st == 0 || io == 0 {
		t.Errorf("SkippedReads = %d, %d; want the idle child's reads skipped", st, io)
	}
	p := on.procs[int32(mustAtoi(t, idle))]
	if p == nil || !p.hasSched || !p.hasStatus || !p.hasIO {
		t.Fatalf("idle child: no gate state: %+v", p)
	}
	// And against the files themselves, read now.
	status, err := os.ReadFile("/proc/" + idle + "/status")
	if err != nil {
		t.Fatal(err)
	}
	sf, err := parseStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if p.status != sf {
		t.Errorf("idle child: kept status %+v, file %+v", p.status, sf)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
