package agent

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procgen"
	"github.com/procfleet/procfleet/config"
)

// The process generator's gate savings are counted, from this host's
// /proc, where idle processes (this test's own parent shell among them)
// have status and io left unread on the second scan; and the wrapped
// generator is still closed by the scheduler.
func TestProcessSkipsCounted(t *testing.T) {
	set := metrics.NewSet()
	g := countProcess(procgen.New(procgen.Options{ProcRoot: "/proc", Threads: true}), set)
	if _, ok := any(g).(io.Closer); !ok {
		t.Fatal("the counted process generator is not an io.Closer: its kept descriptors would leak")
	}
	defer g.Close()
	pool := emit.NewPool(4)
	scan := emit.NewScan(pool, &emit.MemSink{Pool: pool}, emit.NewTracker(10))
	for i := range 3 {
		scan.Start(context.Background(), int64(i)*1000)
		if err := g.Collect(scan); err != nil {
			t.Logf("scan %d: %v", i, err) // a process exiting mid-scan is no failure
		}
		if err := scan.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := g.SkippedReads()
	var out strings.Builder
	set.WritePrometheus(&out)
	m := out.String()
	if st == 0 {
		if _, err := os.Stat("/proc/self/schedstat"); err != nil {
			t.Skipf("this kernel has no /proc/PID/schedstat (%v): the gate never skips", err)
		}
		// go test itself waits for this binary: at least it stayed idle.
		t.Fatal("no status read skipped in 3 scans of /proc")
	}
	want := `procfleet_generator_reads_skipped_total{generator="process",file="status"} ` + strconv.FormatUint(st, 10)
	if !strings.Contains(m, want) {
		t.Fatalf("metrics lack %q:\n%s", want, m)
	}
	if !strings.Contains(m, `procfleet_generator_reads_skipped_total{generator="process",file="io"}`) {
		t.Fatalf("metrics lack the io count:\n%s", m)
	}
	// Kernel threads' stat reads saved: as many as the generator counts
	// (none on a busy host, where loadavg counts other runnable tasks).
	want = `procfleet_generator_reads_skipped_total{generator="process",file="stat"} ` + strconv.FormatUint(g.SkippedStats(), 10)
	if !strings.Contains(m, want) {
		t.Fatalf("metrics lack %q:\n%s", want, m)
	}
	// Three scans, each listing everything or only new PIDs.
	all, fresh := g.Listings()
	if all+fresh != 3 {
		t.Errorf("Listings = %d all, %d new; want 3 scans in all", all, fresh)
	}
	for kind, n := range map[string]uint64{"all": all, "new": fresh} {
		want := `procfleet_generator_listings_total{generator="process",kind="` + kind + `"} ` + strconv.FormatUint(n, 10)
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	// Threads on: every process's task directory listed on the first
	// scan, then only when a thread may be new; idle threads' status left
	// unread.
	taskStatus, _, listed, saved := g.ThreadCounts()
	if taskStatus == 0 || saved == 0 || listed < uint64(g.Tracked()) {
		t.Errorf("ThreadCounts: %d thread status reads skipped, %d task directories listed, %d saved, %d processes", taskStatus, listed, saved, g.Tracked())
	}
	for _, want := range []string{
		`procfleet_generator_reads_skipped_total{generator="process",file="task/status"} ` + strconv.FormatUint(taskStatus, 10),
		`procfleet_generator_task_listings_total{generator="process",kind="listed"} ` + strconv.FormatUint(listed, 10),
		`procfleet_generator_task_listings_total{generator="process",kind="saved"} ` + strconv.FormatUint(saved, 10),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// Every host generator keeps its /proc files open between scans and is an
// io.Closer, so that the scheduler, which closes the generators it drops
// (on a config change), releases them: after a scan of this host's /proc
// each holds descriptors (those whose files this kernel has), and after
// Close the process holds as many as before.
func TestHostGeneratorsCloseKeptFiles(t *testing.T) {
	if !onProcfs(t, "/proc") {
		t.Skip("/proc is not a procfs here: nothing is kept open")
	}
	cfg := config.DefaultAgent()
	cfg.ProcfsRoot = "/proc"
	cfg.Generators.Process.Enabled = false
	gens, err := Generators(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := emit.NewPool(4)
	kept := 0
	for _, g := range gens {
		c, ok := g.(io.Closer)
		if !ok {
			t.Fatalf("generator %s is not an io.Closer: its kept descriptors would leak", g.Name())
		}
		before := openFDs(t)
		scan := emit.NewScan(pool, &emit.MemSink{Pool: pool}, emit.NewTracker(10))
		scan.Start(context.Background(), 1000)
		if err := g.Collect(scan); err != nil {
			t.Logf("generator %s: %v", g.Name(), err) // a file this kernel lacks is no failure here
		}
		if err := scan.Finish(); err != nil {
			t.Fatal(err)
		}
		during := openFDs(t)
		if err := c.Close(); err != nil {
			t.Fatalf("generator %s: Close: %v", g.Name(), err)
		}
		if after := openFDs(t); after != before {
			t.Fatalf("generator %s: %d descriptors open before its scan, %d while kept, %d after Close", g.Name(), before, during, after)
		}
		switch g.Name() {
		case "stat", "meminfo", "loadavg", "vmstat":
			if during <= before {
				t.Fatalf("generator %s kept no descriptor of its file after a scan", g.Name())
			}
		}
		kept += during - before
	}
	t.Logf("%d host generators kept %d descriptors", len(gens), kept)
}

func onProcfs(t *testing.T, path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == 0x9fa0 // PROC_SUPER_MAGIC
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
