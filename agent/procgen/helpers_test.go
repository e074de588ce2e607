package procgen

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

// writeTree writes files (path relative to root -> content) under root.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// statLine returns a stat line for a process with the given values and
// plausible values elsewhere.
func statLine(pid int, comm string, state byte, ppid int, utime, stime, start uint64) string {
	return strconv.Itoa(pid) + " (" + comm + ") " + string([]byte{state}) + " " + strconv.Itoa(ppid) +
		" 1 1 0 -1 4194560 100 0 2 0 " + strconv.FormatUint(utime, 10) + " " + strconv.FormatUint(stime, 10) +
		" 0 0 20 0 1 0 " + strconv.FormatUint(start, 10) + " 172032000 2750 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
}

// statusText returns a status file with the given uid and ctxt switches.
func statusText(name string, uid, vol, nonvol uint64) string {
	u := strconv.FormatUint(uid, 10)
	return "Name:\t" + name + "\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t1\nUid:\t" + u + "\t" + u + "\t" + u + "\t" + u +
		"\nVmRSS:\t    11000 kB\nThreads:\t1\nvoluntary_ctxt_switches:\t" + strconv.FormatUint(vol, 10) +
		"\nnonvoluntary_ctxt_switches:\t" + strconv.FormatUint(nonvol, 10) + "\n"
}

// procFiles returns the files of one simple process.
func procFiles(pid int, comm string, state byte, ppid int, utime, start uint64, cmdline string) map[string]string {
	p := strconv.Itoa(pid) + "/"
	return map[string]string{
		p + "stat":    statLine(pid, comm, state, ppid, utime, 10, start),
		p + "status":  statusText(comm, 1000, 5, 1),
		p + "io":      "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n",
		p + "cmdline": cmdline,
	}
}

// newRoot returns a fresh procfs root with a stat file holding btime.
func newRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"stat": "cpu  1 2 3 4\nbtime 1700000000\nprocesses 10\n"})
	return root
}

// scanner runs a generator cycle after cycle against one tracker, as the
// scheduler does.
type scanner struct {
	g       *Generator
	tracker *emit.Tracker
	pool    *emit.Pool
	sink    *emit.MemSink
	scan    *emit.Scan
}

func newScanner(g *Generator, fullEvery int) *scanner {
	pool := emit.NewPool(4)
	sink := &emit.MemSink{Pool: pool}
	tr := emit.NewTracker(fullEvery)
	sc := &scanner{g: g, tracker: tr, pool: pool, sink: sink, scan: emit.NewScan(pool, sink, tr)}
	if fullEvery > 200 {
		// Refresh slots are handed out from 0 and fall due when the cycle
		// number reaches them: empty cycles first keep the refresh of the
		// few test series out of the cycles under test.
		for i := 0; i < 100; i++ {
			sc.scan.Start(context.Background(), 0)
			_ = sc.scan.Finish()
		}
	}
	return sc
}

// cycle runs one scan and returns its lines, sorted.
func (sc *scanner) cycle(t testing.TB) []string {
	t.Helper()
	sc.scan.Start(context.Background(), 0)
	err := sc.g.Collect(sc.scan)
	if ferr := sc.scan.Finish(); ferr != nil {
		t.Fatal(ferr)
	}
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return lines(sc.sink.Take())
}

// lines splits text format output into sorted lines.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	sort.Strings(out)
	return out
}

// hasLine reports whether ls holds l.
func hasLine(ls []string, l string) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// grep returns the lines of ls that contain sub.
func grep(ls []string, sub string) []string {
	var out []string
	for _, x := range ls {
		if strings.Contains(x, sub) {
			out = append(out, x)
		}
	}
	return out
}
