package hostgen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

// collectB runs g once and returns its series and error.
func collectB(t *testing.T, g emit.Generator) (map[string]float64, error) {
	t.Helper()
	out, err := emit.Collect(g)
	m, perr := testenv.ParseText(out)
	if perr != nil {
		t.Fatalf("parse output of %s: %v\n%s", g.Name(), perr, out)
	}
	return m, err
}

// wantErrAt checks that err is nil when want is "", and otherwise mentions
// every comma-separated part of want (such as "line 3").
func wantErrAt(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Errorf("no error, want one mentioning %q", want)
		return
	}
	for _, part := range strings.Split(want, ",") {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
}

// fixtureRootB is the repository's fixture proc tree.
func fixtureRootB(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc")
}

func TestNetGeneratorsSteadyStateAllocs(t *testing.T) {
	root := fixtureRootB(t)
	gens := []emit.Generator{
		NewNetdev(Options{ProcRoot: root}),
		NewNetstat(Options{ProcRoot: root}),
		NewDiskstats(Options{ProcRoot: root}),
		NewSockstat(Options{ProcRoot: root}),
	}
	for _, g := range gens {
		t.Run(g.Name(), func(t *testing.T) {
			pool := emit.NewPool(4)
			s := emit.NewScan(pool, discardSink{pool}, emit.NewTracker(10))
			ts := int64(1_700_000_000_000)
			run := func() {
				ts += 1000
				s.Start(context.Background(), ts)
				if err := g.Collect(s); err != nil {
					t.Fatal(err)
				}
				if err := s.Finish(); err != nil {
					t.Fatal(err)
				}
			}
			run()
			run()
			if a := testing.AllocsPerRun(50, run); a > 2 {
				t.Errorf("%s: %.1f allocations per steady-state Collect, want <= 2", g.Name(), a)
			}
		})
	}
}

// TestNetGeneratorsDevicesComeAndGo checks that series of vanished devices
// stop and that caches shrink with the input.
func TestNetGeneratorsDevicesComeAndGo(t *testing.T) {
	const devHead = "Inter-|   Receive\n face |bytes\n"
	const devLine = ": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
	root := genARoot(t, map[string]string{
		"net/dev":   devHead + "a" + devLine + "b" + devLine + "c" + devLine,
		"diskstats": " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n 8 16 sdb 1 2 3 4 5 6 7 8 9 10 11\n",
	})
	nd := NewNetdev(Options{ProcRoot: root})
	ds := NewDiskstats(Options{ProcRoot: root})
	pool := emit.NewPool(4)
	sink := &emit.MemSink{Pool: pool}
	tr := emit.NewTracker(1)
	s := emit.NewScan(pool, sink, tr)
	run := func(want int) {
		t.Helper()
		s.Start(context.Background(), 1)
		if err := nd.Collect(s); err != nil {
			t.Fatal(err)
		}
		if err := ds.Collect(s); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(); err != nil {
			t.Fatal(err)
		}
		sink.Take()
		if tr.Len() != want {
			t.Errorf("tracker holds %d series, want %d", tr.Len(), want)
		}
	}
	run(3*16 + 2*11)
	writeFile := func(rel, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("net/dev", devHead+"c"+devLine)
	writeFile("diskstats", " 8 16 sdb 1 2 3 4 5 6 7 8 9 10 11\n")
	run(16 + 11)
	if len(ds.devices) != 1 {
		t.Errorf("diskstats caches %d devices, want 1", len(ds.devices))
	}
}
