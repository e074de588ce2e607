package main

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/not_emitted.txt from what node_exporter emits and procfleet does not")

// hostCollectors are node_exporter's collectors for the /proc sources the
// host generators cover, and the flags that make them read the fixture
// instead of the live kernel.
var (
	hostCollectors = []string{"cpu", "stat", "meminfo", "loadavg", "vmstat", "netdev", "netstat",
		"diskstats", "sockstat", "filefd", "pressure", "interrupts", "softirqs"}
	hostCollectorFlags = []string{"--no-collector.netdev.netlink"}
)

// isMeta reports whether a node_exporter series is about node_exporter
// itself rather than the host.
func isMeta(name string) bool {
	for _, p := range []string{"node_scrape_collector_", "go_", "process_", "promhttp_", "node_exporter_build_info", "node_textfile_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TestScanMatchesNodeExporter is the golden test of the metric contract:
// on the same fixture, every host series both emit has the same value, and
// procfleet emits no node_* series node_exporter does not. The node_exporter
// metric names procfleet does not emit are listed, with the reason, in
// testdata/not_emitted.txt.
func TestScanMatchesNodeExporter(t *testing.T) {
	fixtures := map[string][2]string{
		"procfleet":     {filepath.Join("..", "..", "testdata", "fixtures", "proc"), filepath.Join("..", "..", "testdata", "fixtures", "sys")},
		"node_exporter": {testenv.NodeExporterFixtures(t), emptySysfs(t)},
		"procfs":        {testenv.ProcfsFixtures(t), emptySysfs(t)},
	}
	notEmitted := map[string]bool{}
	for name, roots := range fixtures {
		t.Run(name, func(t *testing.T) {
			proc, err := filepath.Abs(roots[0])
			if err != nil {
				t.Fatal(err)
			}
			ne := testenv.StartNodeExporter(t, proc, roots[1], hostCollectors, hostCollectorFlags...)
			theirs := ne.Scrape(t)
			stdout, stderr, code := run(t, "scan", "--procfs-root", proc, "--sysfs-root", roots[1], "--hostname", "h")
			if code != 0 {
				t.Fatalf("scan exit %d: %s", code, stderr)
			}
			samples, err := testenv.ParseSamples([]byte(stdout))
			if err != nil {
				t.Fatal(err)
			}
			ours := map[string]float64{}
			for _, s := range samples {
				delete(s.Labels, "instance")
				delete(s.Labels, "job")
				ours[s.Key()] = s.Value
			}
			matched := 0
			for k, v := range theirs {
				metric := k
				if i := strings.IndexByte(k, '{'); i >= 0 {
					metric = k[:i]
				}
				if isMeta(metric) {
					continue
				}
				got, ok := ours[k]
				if !ok {
					notEmitted[metric] = true
					continue
				}
				matched++
				if got != v && !(math.IsNaN(got) && math.IsNaN(v)) && math.Abs(got-v) > 1e-12*math.Abs(v) {
					t.Errorf("%s: procfleet %v, node_exporter %v", k, got, v)
				}
			}
			for k := range ours {
				if strings.HasPrefix(k, "node_") {
					if _, ok := theirs[k]; !ok {
						t.Errorf("procfleet emits %s, node_exporter does not", k)
					}
				}
			}
			if matched < 50 {
				t.Fatalf("only %d series matched; the comparison proves little", matched)
			}
			t.Logf("%d series equal", matched)
		})
	}
	checkNotEmitted(t, notEmitted)
}

// checkNotEmitted compares the metric names node_exporter emits and
// procfleet does not with testdata/not_emitted.txt, where each line is
// "name  # reason".
func checkNotEmitted(t *testing.T, names map[string]bool) {
	t.Helper()
	path := filepath.Join("testdata", "not_emitted.txt")
	data, _ := os.ReadFile(path)
	reasons := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		name, reason, _ := strings.Cut(l, "#")
		name = strings.TrimSpace(name)
		if name != "" {
			reasons[name] = strings.TrimSpace(reason)
		}
	}
	var got []string
	for n := range names {
		got = append(got, n)
	}
	slices.Sort(got)
	if *update {
		var b strings.Builder
		b.WriteString("# node_exporter v1.12.1 metrics of the host collectors that procfleet does not emit, and why.\n")
		b.WriteString("# Checked by TestScanMatchesNodeExporter; regenerate with go test ./cmd/procfleet -run TestScanMatchesNodeExporter -update.\n")
		for _, n := range got {
			r := reasons[n]
			if r == "" {
				r = "TODO: say why"
			}
			b.WriteString(n + "  # " + r + "\n")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, n := range got {
		r, ok := reasons[n]
		if !ok {
			t.Errorf("node_exporter emits %s and procfleet does not; emit it or list it with the reason in %s", n, path)
		} else if r == "" || strings.HasPrefix(r, "TODO") {
			t.Errorf("%s: %s is listed without a reason", path, n)
		}
	}
	for n := range reasons {
		if !names[n] && !strings.HasPrefix(n, "node_exporter") {
			t.Errorf("%s lists %s, but procfleet emits it now (or node_exporter does not); drop the line", path, n)
		}
	}
}

// emptySysfs returns a sysfs tree with one empty cpu directory, the least
// node_exporter's cpu collector reads without failing.
func emptySysfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "devices", "system", "cpu", "cpu0"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
