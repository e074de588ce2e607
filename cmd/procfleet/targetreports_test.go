package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestClusteredAgentReportsTargetsAfterIdle runs a clustered agent
// in-process against embedded etcd and a real VictoriaMetrics, first
// with no scrape job: it scrapes nothing, so its loop stops handing the
// scraper's states to its member. A job then gives it a target
// (VictoriaMetrics' own /metrics): the agent reports it again, and its
// member writes the target scraped to target-reports/<node> (the same
// report tells the gossip, which a member handing targets over waits
// for). Without the job the report is deleted.
func TestClusteredAgentReportsTargetsAfterIdle(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t)
	ep, cl := "--etcd="+strings.Join(etcd.Endpoints, ","), "--cluster=idle"
	dir := t.TempDir()
	idle, withJob := filepath.Join(dir, "idle.yaml"), filepath.Join(dir, "job.yaml")
	upstream := "upstreams: [{name: vm, url: \"" + vm.ImportURL + "\", capacity: 1MiB/s}]\nring: {fallbacks: 0}\n"
	writeFile(t, idle, upstream)
	writeFile(t, withJob, upstream+"scrape_configs:\n  - {job_name: vm, scrape_interval: 1s, static_configs: [{targets: ['"+vm.Addr+"']}]}\n")
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", idle); code != 0 {
		t.Fatal(stderr)
	}
	local := config.DefaultAgent()
	local.Listen = "127.0.0.1:0"
	local.ProcfsRoot = filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc")
	ef := etcdFlags{endpoints: strings.Join(etcd.Endpoints, ","), cluster: "idle", dialTimeout: 5 * time.Second}
	mf := memberFlags{node: "r1", gossipListen: "127.0.0.1:0", leaseTTL: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runClustered(ctx, local, ef, mf, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(40 * time.Second):
			t.Error("runClustered did not return within 40s of its context ending")
		}
	})

	cli := etcdtest.NewEtcdClient(t, etcd.Endpoints)
	space, _ := keys.New("idle")
	status := func() (cluster.Status, error) {
		key, _ := space.Status("r1")
		var st cluster.Status
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) == 0 {
			return st, fmt.Errorf("no status (%v)", err)
		}
		return st, json.Unmarshal(resp.Kvs[0].Value, &st)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the agent computed that it scrapes nothing", func() error {
		st, err := status()
		if err != nil || st.Targets == nil || *st.Targets != 0 {
			return fmt.Errorf("status %+v, %v", st, err)
		}
		return nil
	})
	if _, stderr, code := run(t, "config", "set", "-f", withJob, ep, cl); code != 0 {
		t.Fatal(stderr)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the target reported scraped", func() error {
		reps, err := cluster.ReadTargetReports(ctx, cli, space)
		if err != nil {
			return err
		}
		r := reps["r1"]
		if len(r.Targets) != 1 || r.Targets[0].Target != vm.Addr || r.Targets[0].LastScrape == nil || r.Targets[0].Samples == 0 {
			return fmt.Errorf("report %+v", r)
		}
		return nil
	})
	if _, stderr, code := run(t, "config", "set", "-f", idle, ep, cl); code != 0 {
		t.Fatal(stderr)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the report deleted", func() error {
		reps, err := cluster.ReadTargetReports(ctx, cli, space)
		if err != nil || len(reps) != 0 {
			return fmt.Errorf("reports %+v, %v", reps, err)
		}
		return nil
	})
}
