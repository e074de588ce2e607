package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procfleet/procfleet/internal/testenv"
)

func TestParseExeMapping(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{"00400000-00da7000 r-xp 00000000 fe:00 42                           /usr/local/bin/procfleet", true},
		{"00da7000-01886000 r--p 009a7000 fe:00 42                           /usr/local/bin/procfleet (deleted)", true},
		{"01886000-01905000 rw-p 01486000 fe:00 42                           /usr/local/bin/procfleet", false}, // data: written
		{"01886000-01905000 r--s 01486000 fe:00 42                           /usr/local/bin/procfleet", false}, // shared
		{"01886000-01905000 ---p 01486000 fe:00 42                           /usr/local/bin/procfleet", false}, // guard
		{"00400000-00da7000 r-xp 00000000 fe:00 43                           /usr/local/bin/other", false},
		{"135b16000000-135b16c00000 rw-p 00000000 00:00 0 ", false},
		{"Rss:                 120 kB", false},
	} {
		m, ok := parseExeMapping(c.line, 42)
		if ok != c.ok {
			t.Errorf("parseExeMapping(%q) = %v, want %v", c.line, ok, c.ok)
		}
		if ok && (m.start == 0 || m.end <= m.start) {
			t.Errorf("parseExeMapping(%q) = %+v", c.line, m)
		}
	}
}

// kept is set at run time: releasing the executable's pages must not take
// the data segment back to the file's values.
var kept = "from the file"

func TestReleaseExePages(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// An installed binary's pages are clean; a test binary just linked
	// may still be written back, and dirty pages cannot be dropped.
	syncFile(t, exe)
	kept = strings.ToUpper("set at run time")
	r, err := releaseExePages()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test binary: resident %d KiB before, %d KiB after; cached %d KiB before, %d KiB after",
		r.residentBefore>>10, r.residentAfter>>10, r.cachedBefore>>10, r.cachedAfter>>10)
	if r.residentBefore <= 0 || r.residentAfter >= r.residentBefore/2 {
		t.Errorf("resident bytes of the executable's mappings %d before, %d after; want at least halved", r.residentBefore, r.residentAfter)
	}
	if keepsPages(t, exe) {
		t.Logf("%s is on a file system that keeps its pages in memory: the cached pages are not checked", exe)
	} else if r.cachedBefore <= 0 || r.cachedAfter >= r.cachedBefore/2 {
		t.Errorf("bytes of the executable's mappings in the page cache %d before, %d after; want at least halved", r.cachedBefore, r.cachedAfter)
	}
	if kept != "SET AT RUN TIME" {
		t.Errorf("a variable set at run time reads %q after the release", kept)
	}
	if got := randomMappings(t); got != len(r.maps) || got == 0 {
		t.Errorf("%d of the executable's %d read-only mappings advised for random access after the release; want all", got, len(r.maps))
	}
	if err := readNormally(r.maps); err != nil {
		t.Fatal(err)
	}
	if got := randomMappings(t); got != 0 {
		t.Errorf("%d of the executable's read-only mappings still advised for random access after readNormally", got)
	}
}

// syncFile writes the file at path to its disk, so that its pages in the
// page cache are clean, as an installed binary's are.
func syncFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// keepsPages reports whether the file at path is on a file system whose
// pages stay in memory whatever is dropped from the page cache.
func keepsPages(t *testing.T, path string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

// randomMappings returns how many of this process's read-only mappings of
// its executable are advised for random access.
func randomMappings(t *testing.T) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	maps, err := exeMappings("/proc/self/smaps", st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range maps {
		if m.random {
			n++
		}
	}
	return n
}

// TestAgentReleasesStartPages runs the agent binary and checks that it
// releases its start-up pages startPagesDelay after its start, and keeps
// running and shipping afterwards.
func TestAgentReleasesStartPages(t *testing.T) {
	vm := testenv.StartVM(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Its own copy of the binary, written to disk: pages another process
	// maps stay cached, and so do pages not yet written back.
	exe := filepath.Join(t.TempDir(), "procfleet")
	testenv.CopyFile(t, binary, exe, 0o755)
	syncFile(t, exe)
	var log testenv.Buffer
	cmd := exec.CommandContext(ctx, exe, "agent", "--upstream", vm.ImportURL, "--listen", testenv.FreeAddr(t),
		"--hostname", "start-pages", "--log-level", "debug")
	cmd.Stderr = &log
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	line := regexp.MustCompile(`msg="released the executable's start-up pages".* resident_before=(\d+) resident_after=(\d+) cached_before=(\d+) cached_after=(\d+)`)
	var m []string
	testenv.Eventually(t, startPagesDelay+30*time.Second, 100*time.Millisecond, "the release's log line", func() error {
		if m = line.FindStringSubmatch(log.String()); m == nil {
			return fmt.Errorf("not in the log yet:\n%s", log.String())
		}
		return nil
	})
	if !strings.Contains(log.String(), fmt.Sprintf(`msg="go runtime" gc_percent=%d from_GOGC=false heap_profile=false`, agentGCPercent)) {
		t.Errorf("the agent does not say it set the collector's percentage to %d and turned the heap profile off:\n%s", agentGCPercent, log.String())
	}
	before, _ := strconv.ParseInt(m[1], 10, 64)
	after, _ := strconv.ParseInt(m[2], 10, 64)
	if before < 4<<20 || after >= before/2 {
		t.Errorf("agent released its start-up pages from %d to %d resident bytes; want 4 MiB or more, at least halved", before, after)
	}
	cachedBefore, _ := strconv.ParseInt(m[3], 10, 64)
	cachedAfter, _ := strconv.ParseInt(m[4], 10, 64)
	if keepsPages(t, exe) {
		t.Logf("%s is on a file system that keeps its pages in memory: the cached pages are not checked", exe)
	} else if cachedBefore < 4<<20 || cachedAfter >= cachedBefore/2 {
		t.Errorf("agent dropped its start-up pages from the page cache from %d to %d bytes; want 4 MiB or more, at least halved", cachedBefore, cachedAfter)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	maps, err := exeMappings(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid), st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	var now int64
	for _, mp := range maps {
		now += mp.rss
	}
	if len(maps) == 0 || now >= before {
		t.Errorf("the agent's mappings of its executable: %d of them, %d resident bytes; want fewer than the %d before the release", len(maps), now, before)
	}
	// It keeps shipping with the pages it maps again.
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "a sample after the release", func() error {
		vm.Flush(t)
		s, err := vm.TryExport(`node_context_switches_total{instance="start-pages"}`)
		if err != nil {
			return err
		}
		if len(s) == 0 || len(s[0].Values) < 8 {
			return fmt.Errorf("%d series", len(s))
		}
		return nil
	})
}

func TestSetAgentGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "") // registers the restore of GOGC
	os.Unsetenv("GOGC")
	if p, env := setAgentGCPercent(); p != agentGCPercent || env {
		t.Errorf("without GOGC: %d, %v; want %d, false", p, env, agentGCPercent)
	}
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Errorf("the collector's percentage is %d; want %d", got, agentGCPercent)
	}
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // as the runtime does from $GOGC at start
	if p, env := setAgentGCPercent(); p != 80 || !env {
		t.Errorf("with GOGC=80: %d, %v; want 80, true", p, env)
	}
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("with GOGC=80 the collector's percentage is %d; want it left at 80", got)
	}
}

func TestSetHeapProfile(t *testing.T) {
	defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
	runtime.MemProfileRate = 512 << 10
	if !setHeapProfile("127.0.0.1:6060") || runtime.MemProfileRate != 512<<10 {
		t.Errorf("with --pprof-listen the heap profile is off (rate %d)", runtime.MemProfileRate)
	}
	if setHeapProfile("") || runtime.MemProfileRate != 0 {
		t.Errorf("without --pprof-listen the heap profile is on (rate %d)", runtime.MemProfileRate)
	}
}

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		cur  int
		want int
	}{
		{4 << 20, agentGCPercent, agentGCPercent},   // a /proc agent
		{4 << 20, scraperGCPercent, agentGCPercent}, // a scraper whose jobs went away
		{bigHeap, agentGCPercent, scraperGCPercent}, // a scraper
		{bigHeap - 1, agentGCPercent, agentGCPercent},
		{bigHeap - 1, scraperGCPercent, scraperGCPercent}, // between the two: no flapping
		{bigHeap / 2, scraperGCPercent, scraperGCPercent},
		{bigHeap/2 - 1, scraperGCPercent, agentGCPercent},
	} {
		if got := gcPercentFor(c.live, c.cur); got != c.want {
			t.Errorf("gcPercentFor(%d, %d) = %d; want %d", c.live, c.cur, got, c.want)
		}
	}
}

// TestTuneGCPercent: a live heap past bigHeap puts the collector at
// scraperGCPercent, and it comes back to agentGCPercent once the heap is small again.
func TestTuneGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(agentGCPercent))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tuneGCPercent(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	big := make([]*[1 << 20]byte, 0, 40)
	for range 40 {
		big = append(big, new([1 << 20]byte))
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "scraperGCPercent with 40 MiB live", func() error {
		runtime.GC()
		if p := percent(); p != scraperGCPercent {
			return fmt.Errorf("percentage %d", p)
		}
		return nil
	})
	runtime.KeepAlive(big)
	clear(big)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "agentGCPercent once the heap is small", func() error {
		runtime.GC()
		if p := percent(); p != agentGCPercent {
			return fmt.Errorf("percentage %d", p)
		}
		return nil
	})
}
