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

// TestClusteredRelay runs the whole tier from one cluster config: an
// upstream marked relay: true (a relay process) and a VictoriaMetrics. The
// relay registers in etcd and takes only the VictoriaMetrics from the
// ring, with a budget weighted by the agents it carries; an agent placed on
// the relay writes through it, and its samples land in VictoriaMetrics.
func TestClusteredRelay(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=relaye2e"
	relayAddr := testenv.FreeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	// Which agents the ring places on the relay is its business; the
	// checks below read it from the status.
	writeFile(t, cfgFile, `upstreams:
  - {name: relay-1, url: "http://`+relayAddr+`/api/v1/import/prometheus", capacity: 1MiB/s, relay: true}
  - {name: vm, url: "`+vm.ImportURL+`", capacity: 2MiB/s}
ring: {fallbacks: 0}
status: {interval: 1s}
agents:
  compress: {flush_age: 250ms}
`)
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	start := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	start("relay", ep, cl, "--node", "r1", "--listen", relayAddr, "--data-dir", t.TempDir(),
		"--lease-ttl", "2s", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	for _, n := range []string{"a1", "a2", "a3", "a4"} {
		start("agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", "2s", "--procfs-root", fixture,
			"--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
	}
	var s clusterStatus
	deadline := time.Now().Add(40 * time.Second)
	for {
		out, stderr, code := run(t, "status", ep, cl, "-o", "json")
		if code != 0 {
			t.Fatalf("status: %s", stderr)
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		ready := len(s.Agents) == 4 && len(s.Relays) == 1 && s.Relays[0].BudgetBytesPerSecond > 0
		for _, m := range append(s.Agents, s.Relays...) {
			ready = ready && m.ConfigRevision == s.ConfigRevision && len(m.Upstreams) > 0
		}
		// Members report at most once a second: wait until the reports
		// are of one placement, whose budgets fill each upstream exactly.
		for _, u := range s.Upstreams {
			ready = ready && (u.Agents+u.Relays == 0 || u.BudgetBytesPerSecond == u.CapacityBytesPerSecond)
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not converge: %+v", s)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r := s.Relays[0]
	if r.HTTP != relayAddr {
		t.Errorf("relay http = %q; want %s, its --listen", r.HTTP, relayAddr)
	}
	if len(r.Upstreams) != 1 || r.Upstreams[0] != "vm" {
		t.Fatalf("relay upstreams = %v; want only vm (never a relay)", r.Upstreams)
	}
	var viaRelay []string
	for _, a := range s.Agents {
		if a.Upstreams[0] == "relay-1" {
			viaRelay = append(viaRelay, a.Node)
		}
	}
	if len(viaRelay) == 0 {
		t.Fatalf("no agent placed on the relay: %+v", s.Agents)
	}
	for _, u := range s.Upstreams {
		if u.Name == "vm" && (u.Relays != 1 || u.BudgetBytesPerSecond != u.CapacityBytesPerSecond) {
			t.Fatalf("vm upstream = %+v; want the relay on it and budgets summing to its capacity", u)
		}
	}
	// The relay weighs the agents it carries: its share of vm is theirs.
	direct := 4 - len(viaRelay)
	want := int64(2<<20) * int64(len(viaRelay)) / int64(len(viaRelay)+direct)
	if got := r.BudgetBytesPerSecond; got < want-1 || got > want+int64(direct)+1 {
		t.Fatalf("relay budget = %d; want about %d (%d of 4 agents through it)", got, want, len(viaRelay))
	}
	// The relay's /metrics has its member's series.
	testenv.Eventually(t, 20*time.Second, 200*time.Millisecond, "the relay's member metrics", func() error {
		page, err := testenv.Scrape("http://" + relayAddr + "/metrics")
		if err != nil {
			return err
		}
		for name, v := range map[string]float64{"procfleet_gossip_members": 5, `procfleet_cluster_members{kind="agent"}`: 4,
			`procfleet_cluster_members{kind="relay"}`: 1, "procfleet_cluster_config_revision": float64(s.ConfigRevision)} {
			if got, ok := testenv.SumMetric(page, name); !ok || got != v {
				return fmt.Errorf("%s = %v (listed: %v); want %v", name, got, ok, v)
			}
		}
		return nil
	})
	// The relay's own metrics are labelled with its node name.
	waitRelayInstance(t, vm, "r1")
	for _, n := range viaRelay {
		deadline := time.Now().Add(20 * time.Second)
		for {
			vm.Flush(t)
			series, err := vm.TryExport(`node_load1{instance="` + n + `"}`)
			if err == nil && len(series) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's data never reached VictoriaMetrics through the relay", n)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}
