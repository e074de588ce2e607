package procgen

import (
	"errors"
	"flag"
	"io/fs"
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

// oracleLines builds, with procfs's own parsers, the lines the generator
// must write for root.
func oracleLines(t *testing.T, root string, threads bool) []string {
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
	var out []string
	add := func(name string, v float64, labels ...string) {
		b := []byte(name + "{")
		for i := 0; i < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]+`="`...)
			b = emit.AppendEscaped(b, labels[i+1])
			b = append(b, '"')
		}
		b = append(b, "} "...)
		out = append(out, string(emit.AppendValue(b, v)))
	}
	for _, p := range procs {
		s, err := p.Stat()
		if err != nil {
			continue // the generator skips it too (no stat file)
		}
		pid := strconv.Itoa(p.PID)
		add(mCPU, float64(s.UTime)/userHZ, "pid", pid, "mode", "user")
		add(mCPU, float64(s.STime)/userHZ, "pid", pid, "mode", "system")
		add(mRSS, float64(s.ResidentMemory()), "pid", pid)
		add(mVirtual, float64(s.VirtualMemory()), "pid", pid)
		add(mThreads, float64(s.NumThreads), "pid", pid)
		add(mMinFlt, float64(s.MinFlt), "pid", pid)
		add(mMajFlt, float64(s.MajFlt), "pid", pid)
		add(mStartTime, float64(st.BootTime)+float64(s.Starttime)/userHZ, "pid", pid)
		add(mState, 1, "pid", pid, "state", stateName(s.State[0]))
		if io, err := p.IO(); err == nil {
			add(mIORead, float64(io.ReadBytes), "pid", pid)
			add(mIOWrite, float64(io.WriteBytes), "pid", pid)
		}
		if status, err := p.NewStatus(); err == nil {
			add(mCtxt, float64(status.VoluntaryCtxtSwitches), "pid", pid, "kind", "voluntary")
			add(mCtxt, float64(status.NonVoluntaryCtxtSwitches), "pid", pid, "kind", "nonvoluntary")
			args, err := p.CmdLine()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			cmd := string(cmdlineRef([]byte(strings.Join(args, "\x00")), 256))
			add(mInfo, 1, "pid", pid, "comm", s.Comm, "ppid", strconv.Itoa(s.PPID),
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
			add(mCPU, float64(ts.UTime)/userHZ, "pid", pid, "tid", tid, "mode", "user")
			add(mCPU, float64(ts.STime)/userHZ, "pid", pid, "tid", tid, "mode", "system")
			add(mMinFlt, float64(ts.MinFlt), "pid", pid, "tid", tid)
			add(mMajFlt, float64(ts.MajFlt), "pid", pid, "tid", tid)
			add(mState, 1, "pid", pid, "tid", tid, "state", stateName(ts.State[0]))
			if status, err := th.NewStatus(); err == nil {
				add(mCtxt, float64(status.VoluntaryCtxtSwitches), "pid", pid, "tid", tid, "kind", "voluntary")
				add(mCtxt, float64(status.NonVoluntaryCtxtSwitches), "pid", pid, "tid", tid, "kind", "nonvoluntary")
			}
		}
	}
	sort.Strings(out)
	return out
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
			got, want := lines(out), oracleLines(t, root, threads)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s threads=%v: generator and procfs disagree\n%s", name, threads, diff(got, want))
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
