package hostgen

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

// goldenACase is one generator of stat.go ... softirqs.go checked against
// node_exporter run with only the matching collectors.
type goldenACase struct {
	name       string
	collectors []string
	extra      []string // more node_exporter flags
	gen        func(Options) emit.Generator
	// exclude lists node_exporter series (by metric name) that the
	// generator does not emit, each with the reason.
	exclude map[string]string
}

func goldenACases() []goldenACase {
	return []goldenACase{
		{name: "stat", collectors: []string{"cpu", "stat"},
			gen: func(o Options) emit.Generator { return NewStat(o) }},
		{name: "stat_softirq", collectors: []string{"cpu", "stat"}, extra: []string{"--collector.stat.softirq"},
			gen: func(o Options) emit.Generator { g := NewStat(o); g.SoftIRQVectors = true; return g }},
		{name: "meminfo", collectors: []string{"meminfo"},
			gen: func(o Options) emit.Generator { return NewMeminfo(o) }},
		{name: "loadavg", collectors: []string{"loadavg"},
			gen: func(o Options) emit.Generator { return NewLoadavg(o) }},
		{name: "vmstat", collectors: []string{"vmstat"},
			gen: func(o Options) emit.Generator { return NewVmstat(o) }},
		{name: "filefd", collectors: []string{"filefd"},
			gen: func(o Options) emit.Generator { return NewFilefd(o) }},
		{name: "pressure", collectors: []string{"pressure"},
			gen: func(o Options) emit.Generator { return NewPressure(o) }},
		{name: "interrupts", collectors: []string{"interrupts"},
			gen: func(o Options) emit.Generator { return NewInterrupts(o) }},
		{name: "softirqs", collectors: []string{"softirqs"},
			gen: func(o Options) emit.Generator { return NewSoftirqs(o) }},
	}
}

// goldenAMeta reports whether a node_exporter series is about the scrape
// or the exporter itself rather than the input.
func goldenAMeta(name string) bool {
	for _, p := range []string{"node_scrape_collector_", "go_", "process_", "promhttp_", "node_exporter_build_info"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// goldenASysfs returns a sysfs tree holding only an empty
// devices/system/cpu/cpu0: node_exporter's cpu collector indexes the CPUs
// it finds there and would panic on none; with no files below cpu0 it adds
// no series of its own (online, isolated, throttles).
func goldenASysfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "devices", "system", "cpu", "cpu0"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGoldenA(t *testing.T) {
	roots := map[string]string{
		"ours":          filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc"),
		"node_exporter": testenv.NodeExporterFixtures(t),
	}
	for rootName, root := range roots {
		for _, c := range goldenACases() {
			t.Run(rootName+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				goldenACheck(t, root, c)
			})
		}
	}
}

func goldenACheck(t *testing.T, root string, c goldenACase) {
	t.Helper()
	ne := testenv.StartNodeExporter(t, root, goldenASysfs(t), c.collectors, c.extra...)
	want := ne.Scrape(t)
	out, err := emit.Collect(c.gen(Options{ProcRoot: root, SysRoot: t.TempDir()}))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	got, err := testenv.ParseText(out)
	if err != nil {
		t.Fatalf("parse our output: %v\n%s", err, out)
	}
	n := 0
	for _, key := range goldenASortedKeys(want) {
		name := goldenAMetricName(key)
		if goldenAMeta(name) {
			continue
		}
		if _, ok := c.exclude[name]; ok {
			continue
		}
		n++
		g, ok := got[key]
		if !ok {
			t.Errorf("missing %s (node_exporter: %v)", key, want[key])
			continue
		}
		if !goldenAEqual(g, want[key]) {
			t.Errorf("%s = %v, node_exporter says %v", key, g, want[key])
		}
	}
	for _, key := range goldenASortedKeys(got) {
		if _, ok := want[key]; !ok {
			t.Errorf("extra series %s = %v, not in node_exporter's output", key, got[key])
		}
	}
	t.Logf("%d series compared, %d emitted by us", n, len(got))
	if n == 0 {
		t.Errorf("node_exporter emitted no series for %v on %s", c.collectors, root)
	}
}

func goldenAEqual(a, b float64) bool {
	if a == b || math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func goldenAMetricName(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		return key[:i]
	}
	return key
}

func goldenASortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
