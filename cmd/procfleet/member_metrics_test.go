package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestClusteredAgentMetrics checks that a clustered agent's /metrics has
// its member's series: the gossip's (procfleet_gossip_members counts both
// agents) and the member's own (config revision applied, registered
// members, budget, gossip running). The agents' /metrics are found where
// procfleet status says they listen (http), a port picked for :0 included.
func TestClusteredAgentMetrics(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t) // an upstream that answers, so that no one votes it down
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=metrics"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfgFile, `ring: {fallbacks: 0}
upstreams:
  - {name: vm, url: "`+vm.ImportURL+`", capacity: 1MiB/s}
`)
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := run(t, "status", ep, cl, "-o", "json")
	var s clusterStatus
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("status: exit %d: %s%s", code, out, stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	// m2 takes a free port: procfleet status says which (http).
	listen := map[string]string{"m1": testenv.FreeAddr(t), "m2": "127.0.0.1:0"}
	for n, addr := range listen {
		cmd := exec.Command(binary, "agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", "2s",
			"--procfs-root", fixture, "--listen", addr, "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	addrs := map[string]string{}
	testenv.Eventually(t, 40*time.Second, 200*time.Millisecond, "both agents in procfleet status", func() error {
		out, stderr, code := run(t, "status", ep, cl, "-o", "json")
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			return fmt.Errorf("status: exit %d: %s%s", code, out, stderr)
		}
		for _, a := range s.Agents {
			addrs[a.Node] = a.HTTP
		}
		if len(addrs) != 2 {
			return fmt.Errorf("agents %+v", s.Agents)
		}
		return nil
	})
	if addrs["m1"] != listen["m1"] || !strings.HasPrefix(addrs["m2"], "127.0.0.1:") || strings.HasSuffix(addrs["m2"], ":0") {
		t.Fatalf("status http: %v; want m1 at %s and m2 at the port it took", addrs, listen["m1"])
	}
	want := map[string]float64{
		"procfleet_gossip_members":                  2,
		`procfleet_cluster_members{kind="agent"}`:   2,
		`procfleet_cluster_members{kind="relay"}`:   0,
		"procfleet_cluster_config_revision":         float64(s.ConfigRevision),
		"procfleet_cluster_budget_bytes_per_second": 1 << 19, // half of the upstream's capacity each
		"procfleet_cluster_gossip_running":          1,
		"procfleet_cluster_saved_state":             0,
	}
	for n, addr := range addrs {
		testenv.Eventually(t, 40*time.Second, 200*time.Millisecond, n+"'s member metrics", func() error {
			page, err := testenv.Scrape("http://" + addr + "/metrics")
			if err != nil {
				return err
			}
			for name, v := range want {
				if got, ok := testenv.SumMetric(page, name); !ok || got != v {
					return fmt.Errorf("%s = %v (listed: %v); want %v", name, got, ok, v)
				}
			}
			if _, ok := testenv.SumMetric(page, "procfleet_gossip_joins_total"); !ok {
				return fmt.Errorf("no procfleet_gossip_joins_total")
			}
			return nil
		})
	}
}
