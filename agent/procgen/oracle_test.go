package procgen

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// procfsFixtures extracts the process directories and the stat file of the
// fixtures that ship with github.com/prometheus/procfs and returns the proc
// root.
func procfsFixtures(t *testing.T) string {
	t.Helper()
	archive := filepath.Join(testenv.ModuleDir(t, "github.com/prometheus/procfs", testenv.ProcfsVersion), "testdata", "fixtures.ttar")
	dir := t.TempDir()
	keep := regexp.MustCompile(`^fixtures/proc(/stat|/[0-9]+(/.*)?)?$`)
	if err := testenv.ExtractTTAR(archive, dir, keep.MatchString); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "fixtures/proc")
}

// sharedFixtures returns a proc root with the PID directories of
// testdata/fixtures/proc (linked) and a stat file of its own, so that the
// output does not depend on the host files other generators keep there.
func sharedFixtures(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../testdata/fixtures/proc")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(t)
	n := 0
	for _, e := range ents {
		if _, ok := parsePID([]byte(e.Name())); ok && e.IsDir() {
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(root, e.Name())); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d PID directories in %s", n, src)
	}
	return root
}

// The oracle below shares nothing with the generator but procfs: metric
// names, the unit of stat times, state words and label escaping are
// written out here, so that a fault in a helper the generator uses
// (emit.AppendEscaped, emit.AppendValue, stateName, userHZ) shows up as a
// difference instead of being copied into the expectation.

// clkTck is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every
// Linux architecture (sysconf(_SC_CLK_TCK)).
const clkTck = 100

// stateWords are the values of proc_pid_state's state label, by the letter
// of /proc/PID/stat (fs/proc/array.c, task_state_array).
var stateWords = map[string]string{
	"R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped",
	"t": "tracing-stop", "X": "dead", "x": "dead", "Z": "zombie",
	"P": "parked", "I": "idle", "K": "wakekill", "W": "waking",
}

// escapeLabel escapes a label value for the Prometheus text format:
// backslash, double quote and line feed take a backslash, and each byte
// that is not part of valid UTF-8 becomes U+FFFD (ranging over a string
// yields U+FFFD for each such byte).
func escapeLabel(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// series returns name{k="v",...} with labels given as k, v pairs.
func series(name string, labels ...string) string {
	parts := make([]string, 0, len(labels)/2)
	for i := 0; i < len(labels); i += 2 {
		parts = append(parts, labels[i]+`="`+escapeLabel(labels[i+1])+`"`)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// samples splits text format lines into series and value; the value is
// parsed, so that its formatting is checked by what it reads back as.
func samples(t *testing.T, ls []string) map[string]float64 {
	t.Helper()
	out := make(map[string]float64, len(ls))
	for _, l := range ls {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			t.Fatalf("line without a value: %q", l)
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: value: %v", l, err)
		}
		if _, dup := out[l[:i]]; dup {
			t.Fatalf("series written twice in one scan: %s", l[:i])
		}
		out[l[:i]] = v
	}
	return out
}

// oracle builds, with procfs's own parsers, the samples the generator must
// write for root.
func oracle(t *testing.T, root string, threads bool) map[string]float64 {
	t.Helper()
	pfs, err := procfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pfs.Stat()
	if err != nil {
		t.Fatal(err)
	}
	procs, err := pfs.AllProcs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	add := func(name string, v float64, labels ...string) { out[series(name, labels...)] = v }
	state := func(letter string) string {
		w, ok := stateWords[letter]
		if !ok {
			t.Fatalf("the fixtures hold state %q, which the oracle has no word for", letter)
		}
		return w
	}
	for _, p := range procs {
		s, err := p.Stat()
		if err != nil {
			continue // the generator skips it too (no stat file)
		}
		pid := strconv.Itoa(p.PID)
		add("proc_pid_cpu_seconds_total", float64(s.UTime)/clkTck, "pid", pid, "mode", "user")
		add("proc_pid_cpu_seconds_total", float64(s.STime)/clkTck, "pid", pid, "mode", "system")
		add("proc_pid_resident_memory_bytes", float64(s.ResidentMemory()), "pid", pid)
		add("proc_pid_virtual_memory_bytes", float64(s.VirtualMemory()), "pid", pid)
		add("proc_pid_threads", float64(s.NumThreads), "pid", pid)
		add("proc_pid_minor_faults_total", float64(s.MinFlt), "pid", pid)
		add("proc_pid_major_faults_total", float64(s.MajFlt), "pid", pid)
		add("proc_pid_start_time_seconds", float64(st.BootTime)+float64(s.Starttime)/clkTck, "pid", pid)
		add("proc_pid_state", 1, "pid", pid, "state", state(s.State))
		if io, err := p.IO(); err == nil {
			add("proc_pid_io_read_bytes_total", float64(io.ReadBytes), "pid", pid)
			add("proc_pid_io_write_bytes_total", float64(io.WriteBytes), "pid", pid)
		}
		if status, err := p.NewStatus(); err == nil {
			add("proc_pid_ctxt_switches_total", float64(status.VoluntaryCtxtSwitches), "pid", pid, "kind", "voluntary")
			add("proc_pid_ctxt_switches_total", float64(status.NonVoluntaryCtxtSwitches), "pid", pid, "kind", "nonvoluntary")
			args, err := p.CmdLine()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			cmd := string(cmdlineRef([]byte(strings.Join(args, "\x00")), 256))
			add("proc_pid_info", 1, "pid", pid, "comm", s.Comm, "ppid", strconv.Itoa(s.PPID),
				"uid", strconv.FormatUint(status.UIDs[0], 10), "cmdline", cmd)
		}
		if !threads {
			continue
		}
		ths, err := pfs.AllThreads(p.PID)
		if err != nil {
			continue
		}
		for _, th := range ths {
			ts, err := th.Stat()
			if err != nil {
				continue
			}
			tid := strconv.Itoa(th.PID)
			add("proc_pid_cpu_seconds_total", float64(ts.UTime)/clkTck, "pid", pid, "tid", tid, "mode", "user")
			add("proc_pid_cpu_seconds_total", float64(ts.STime)/clkTck, "pid", pid, "tid", tid, "mode", "system")
			add("proc_pid_minor_faults_total", float64(ts.MinFlt), "pid", pid, "tid", tid)
			add("proc_pid_major_faults_total", float64(ts.MajFlt), "pid", pid, "tid", tid)
			add("proc_pid_state", 1, "pid", pid, "tid", tid, "state", state(ts.State))
			if status, err := th.NewStatus(); err == nil {
				add("proc_pid_ctxt_switches_total", float64(status.VoluntaryCtxtSwitches), "pid", pid, "tid", tid, "kind", "voluntary")
				add("proc_pid_ctxt_switches_total", float64(status.NonVoluntaryCtxtSwitches), "pid", pid, "tid", tid, "kind", "nonvoluntary")
			}
		}
	}
	return out
}

// sampleDiff lists the series only one side has and the values that differ.
func sampleDiff(got, want map[string]float64) string {
	var ls []string
	for k, g := range got {
		w, ok := want[k]
		switch {
		case !ok:
			ls = append(ls, fmt.Sprintf("+ %s %v", k, g))
		case g != w && !(math.IsNaN(g) && math.IsNaN(w)):
			ls = append(ls, fmt.Sprintf("~ %s %v, want %v", k, g, w))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			ls = append(ls, fmt.Sprintf("- %s %v", k, w))
		}
	}
	sort.Strings(ls)
	return strings.Join(ls, "\n")
}

// TestProcfsOracle checks every value the generator writes for the procfs
// fixtures and for testdata/fixtures/proc against what procfs parses from
// the same files.
func TestProcfsOracle(t *testing.T) {
	roots := map[string]string{"procfs": procfsFixtures(t), "shared": sharedFixtures(t)}
	for name, root := range roots {
		for _, threads := range []bool{false, true} {
			out, err := emit.Collect(New(Options{ProcRoot: root, Threads: threads}))
			// procfs ships one malformed schedstat on purpose: it is
			// reported, and the process is read in full all the same.
			wantErr := ""
			if name == "procfs" {
				wantErr = filepath.Join(root, "26233/schedstat") + ": line 1: field 1:"
			}
			if (err == nil) != (wantErr == "") || err != nil && (!strings.Contains(err.Error(), wantErr) || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("%s: err = %v, want only %q", name, err, wantErr)
			}
			got, want := samples(t, lines(out)), oracle(t, root, threads)
			if d := sampleDiff(got, want); d != "" {
				t.Errorf("%s threads=%v: generator and procfs disagree\n%s", name, threads, d)
			}
			if len(got) < 40 {
				t.Errorf("%s: only %d lines", name, len(got))
			}
		}
	}
}

// diff lists the lines only one side has.
func diff(got, want []string) string {
	in := func(ls []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range ls {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	for _, l := range got {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	for _, l := range want {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

// TestFixturesGolden pins the output for testdata/fixtures/proc, threads on.
// Run with -update to rewrite it.
func TestFixturesGolden(t *testing.T) {
	out, err := emit.Collect(New(Options{ProcRoot: sharedFixtures(t), Threads: true}))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines(out), "\n") + "\n"
	golden := filepath.Join("testdata", "fixtures.golden.prom")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, diff(strings.Split(got, "\n"), strings.Split(string(want), "\n")))
	}
}
