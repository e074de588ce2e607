package testenv

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// NodeExporter is a running node_exporter reading a fixture tree.
type NodeExporter struct {
	URL string // http://127.0.0.1:PORT/metrics
}

// StartNodeExporter starts the pinned node_exporter with only the given
// collectors enabled, reading procfs and sysfs, and waits until it answers.
// extra holds more flags (for example "--no-collector.netdev.netlink").
func StartNodeExporter(t testing.TB, procfs, sysfs string, collectors []string, extra ...string) *NodeExporter {
	t.Helper()
	addr := FreeAddr(t)
	args := []string{
		"--web.listen-address=" + addr,
		"--path.procfs=" + procfs,
		"--path.sysfs=" + sysfs,
		"--collector.disable-defaults",
		"--log.level=warn",
	}
	for _, c := range collectors {
		args = append(args, "--collector."+c)
	}
	args = append(args, extra...)
	startProcess(t, Bin(t, "node_exporter"), args...)
	ne := &NodeExporter{URL: "http://" + addr + "/metrics"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(ne.URL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return ne
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: node_exporter did not answer on %s: %v", ne.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Scrape returns the parsed series of one scrape.
func (ne *NodeExporter) Scrape(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ne.URL)
	if err != nil {
		t.Fatalf("testenv: scrape node_exporter: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseText(body)
	if err != nil {
		t.Fatalf("testenv: parse node_exporter output: %v", err)
	}
	return m
}
