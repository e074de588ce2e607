package hostgen

import (
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

// parityCase describes one generator checked against node_exporter.
type parityCase struct {
	collector string   // node_exporter collector name
	extra     []string // more node_exporter flags
	prefixes  []string // metric name prefixes the generator covers
	// exclude lists node_exporter series (by metric name) that the
	// generator does not emit, each with the reason.
	exclude map[string]string
	gen     func(Options) emit.Generator
}

// diskstatsUnmatched are the diskstats collector's series that do not come
// from /proc/diskstats.
var diskstatsUnmatched = map[string]string{
	"node_disk_info":                    "labels come from udev (/run/udev/data) and sysfs (queue/rotational), not /proc/diskstats",
	"node_disk_filesystem_info":         "udev data only",
	"node_disk_device_mapper_info":      "udev data only",
	"node_disk_ata_write_cache":         "udev data only",
	"node_disk_ata_write_cache_enabled": "udev data only",
	"node_disk_ata_rotation_rate_rpm":   "udev data only",
}

func parityCases() []parityCase {
	return []parityCase{
		{
			collector: "netdev",
			// Netlink reads the live kernel, not the fixture tree.
			extra:    []string{"--no-collector.netdev.netlink"},
			prefixes: []string{"node_network_"},
			gen:      func(o Options) emit.Generator { return NewNetdev(o) },
		},
		{
			collector: "netstat",
			prefixes:  []string{"node_netstat_"},
			gen:       func(o Options) emit.Generator { return NewNetstat(o) },
		},
		{
			collector: "diskstats",
			prefixes:  []string{"node_disk_"},
			exclude:   diskstatsUnmatched,
			gen:       func(o Options) emit.Generator { return NewDiskstats(o) },
		},
		{
			collector: "sockstat",
			prefixes:  []string{"node_sockstat_"},
			gen:       func(o Options) emit.Generator { return NewSockstat(o) },
		},
	}
}

func TestGoldenNetParity(t *testing.T) {
	roots := []struct{ name, proc string }{
		{"ours", filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc")},
		{"node_exporter", testenv.NodeExporterFixtures(t)},
	}
	for _, c := range parityCases() {
		for _, root := range roots {
			t.Run(c.collector+"/"+root.name, func(t *testing.T) {
				t.Parallel()
				checkParity(t, c, root.proc)
			})
		}
	}
}

// checkParity runs node_exporter and the generator on one proc tree and
// compares every series under the generator's prefixes.
func checkParity(t *testing.T, c parityCase, proc string) {
	t.Helper()
	// An empty udev directory keeps the host's udev data out of the result.
	extra := append([]string{"--path.udev.data=" + t.TempDir()}, c.extra...)
	ne := testenv.StartNodeExporter(t, proc, t.TempDir(), []string{c.collector}, extra...)
	want := ne.Scrape(t)
	neOK := want[`node_scrape_collector_success{collector="`+c.collector+`"}`] == 1

	out, err := emit.Collect(c.gen(Options{ProcRoot: proc, SysRoot: t.TempDir()}))
	if neOK && err != nil {
		t.Errorf("node_exporter succeeded, generator failed: %v", err)
	}
	if !neOK && err == nil {
		t.Errorf("node_exporter failed, generator returned no error")
	}
	got, perr := testenv.ParseText(out)
	if perr != nil {
		t.Fatalf("parse generator output: %v\n%s", perr, out)
	}

	covered := func(key string) bool {
		name := key
		if i := strings.IndexByte(key, '{'); i >= 0 {
			name = key[:i]
		}
		if _, ok := c.exclude[name]; ok {
			return false
		}
		for _, p := range c.prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	matched := 0
	for _, key := range sortedKeys(want) {
		if !covered(key) || neMetaSeries(key) {
			continue
		}
		g, ok := got[key]
		switch {
		case !ok:
			t.Errorf("missing %s (node_exporter: %v)", key, want[key])
		case !sameValue(g, want[key]):
			t.Errorf("%s = %v, node_exporter gives %v", key, g, want[key])
		default:
			matched++
		}
	}
	for _, key := range sortedKeys(got) {
		if _, ok := want[key]; !ok {
			t.Errorf("extra series %s = %v, which node_exporter does not emit", key, got[key])
		}
	}
	if neOK && matched == 0 {
		t.Errorf("no series compared: fixture or prefixes wrong")
	}
	t.Logf("%d series equal", matched)
}

// neMetaSeries reports node_exporter's own bookkeeping series.
func neMetaSeries(key string) bool {
	for _, p := range []string{"node_scrape_collector_", "go_", "process_", "promhttp_"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func sameValue(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
