package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// scrapeTargets is how many targets the clustered scraping test scrapes:
// two node_exporter processes, each listening on 30 loopback addresses,
// every address a target of its own.
const scrapeTargets = 60

// steadyFor is how long the three members scrape the targets, steady,
// before one is killed: the two minutes, every target with one up
// sample per interval throughout.
const steadyFor = 2 * time.Minute

// TestClusteredScraping runs agent processes against embedded etcd and a
// real VictoriaMetrics, scraping 60 real node_exporter targets every
// second through a placement cluster job. Three members, for two
// minutes: every target has exactly one up sample per interval. One member killed with SIGKILL:
// no target misses more than 2 intervals plus the detection time. A
// fourth member joins: no target is scraped twice for more than 2
// intervals, none misses an interval, and the newcomer takes its share.
// A member stopped with SIGTERM hands its targets over the same way.
// procfleet targets and status report the targets and their owners.
func TestClusteredScraping(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t)
	root := testenv.RepoRoot(t)
	proc, sys := filepath.Join(root, "testdata", "fixtures", "proc"), filepath.Join(root, "testdata", "fixtures", "sys")
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	var targets []string
	for ne := range 2 {
		var extra []string
		for i := range scrapeTargets / 2 {
			addr := fmt.Sprintf("127.0.%d.%d:%s", 100+ne, i+1, port)
			targets = append(targets, "'"+addr+"'")
			extra = append(extra, "--web.listen-address="+addr)
		}
		testenv.StartNodeExporter(t, proc, sys, []string{"loadavg"}, extra...)
	}
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=e2e"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfgFile, `upstreams:
  - {name: vm, url: "`+vm.ImportURL+`", capacity: 10MiB/s}
agents:
  compress: {flush_age: 250ms}
scrape_configs:
  - job_name: fleet
    scrape_interval: 1s
    static_configs: [{targets: [`+strings.Join(targets, ", ")+`]}]
`)
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	procs := map[string]*exec.Cmd{}
	start := func(n string) {
		cmd := exec.Command(binary, "agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", "2s",
			"--procfs-root", proc, "--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[n] = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		start(n)
	}

	owners := func() map[string]int {
		out, stderr, code := run(t, "targets", ep, cl, "--job", "fleet", "-o", "json")
		if code != 0 {
			t.Fatalf("targets: %s", stderr)
		}
		var got targetsOutput
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("targets JSON: %v\n%s", err, out)
		}
		n := map[string]int{}
		for _, r := range got.Targets {
			if r.Health == "up" && r.LastScrape != "" && r.Samples > 0 {
				n[r.Owner]++
			}
		}
		if len(got.Targets) != scrapeTargets {
			n["listed"] = len(got.Targets)
		}
		return n
	}
	waitOwners := func(what string, cond func(map[string]int) bool) map[string]int {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			o := owners()
			if cond(o) {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; owners of up targets: %v", what, o)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	shared := func(nodes ...string) func(map[string]int) bool {
		return func(o map[string]int) bool {
			sum := 0
			for _, n := range nodes {
				if o[n] == 0 {
					return false
				}
				sum += o[n]
			}
			return sum == scrapeTargets && len(o) == len(nodes)
		}
	}
	waitOwners("60 targets up over n1, n2, n3", shared("n1", "n2", "n3"))
	table, stderr, code := run(t, "targets", ep, cl)
	if code != 0 || !strings.HasPrefix(table, "JOB ") || !strings.Contains(table, "\n60 targets\n") ||
		!strings.Contains(table, "fleet  127.0.100.1:"+port) {
		t.Errorf("targets table (exit %d, %s):\n%s", code, stderr, table)
	}
	// Reports lag a few seconds: let the last moves of the start settle.
	time.Sleep(3 * time.Second)
	steady := time.Now()
	time.Sleep(steadyFor) // the window whose samples are checked below

	killed := time.Now()
	if err := procs["n2"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitOwners("60 targets up over n1 and n3", shared("n1", "n3"))
	time.Sleep(3 * time.Second)

	joined := time.Now()
	start("n4")
	o := waitOwners("60 targets up over n1, n3, n4", shared("n1", "n3", "n4"))
	if o["n4"] < scrapeTargets/3/2 {
		t.Errorf("n4 scrapes %d of %d targets; want about a third", o["n4"], scrapeTargets)
	}
	time.Sleep(4 * time.Second)
	// The members' metrics: n4 owns its share, the others handed it over.
	metric := map[string]float64{}
	for _, a := range statusOf(t, ep, cl).Agents {
		for _, name := range []string{"procfleet_scrape_targets_owned", "procfleet_scrape_handovers_total"} {
			v, err := testenv.ScrapeMetric("http://"+a.HTTP+"/metrics", name)
			if err != nil {
				t.Fatal(err)
			}
			metric[a.Node+" "+name] = v
		}
	}
	if metric["n4 procfleet_scrape_targets_owned"] != float64(o["n4"]) ||
		metric["n1 procfleet_scrape_handovers_total"]+metric["n3 procfleet_scrape_handovers_total"] < float64(o["n4"]) {
		t.Errorf("metrics %v; want n4 owning %d, n1 and n3 having handed as many over", metric, o["n4"])
	}

	// A graceful stop: n1 hands its targets over before it leaves.
	termed := time.Now()
	if err := procs["n1"].Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- procs["n1"].Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("n1 exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("n1 did not exit within 20s of SIGTERM")
	}
	t.Logf("n1 exited %v after SIGTERM", time.Since(termed).Round(time.Millisecond))
	waitOwners("60 targets up over n3 and n4", shared("n3", "n4"))
	time.Sleep(3 * time.Second)
	end := time.Now().Add(-2 * time.Second) // what the agents have shipped by now

	vm.Flush(t)
	series := vm.Export(t, `up{job="fleet"}`)
	if len(series) != scrapeTargets {
		t.Fatalf("%d up series in VictoriaMetrics, want %d", len(series), scrapeTargets)
	}
	const interval = 1000 // ms
	var worstKill, worstJoinDup, worstJoinHole int64
	dupHist := map[int64]int{} // intervals scraped twice after the join or the stop -> targets
	for _, s := range series {
		ts := slices.Clone(s.Timestamps)
		slices.Sort(ts)
		in := func(from, to time.Time) []int64 {
			var out []int64
			for _, v := range ts {
				if v >= from.UnixMilli() && v < to.UnixMilli() {
					out = append(out, v)
				}
			}
			return out
		}
		inst := s.Metric["instance"]
		// Three members, steady: one sample per interval, on the grid.
		w := in(steady, killed)
		if want := int(steadyFor/time.Second) - 2; len(w) < want {
			t.Errorf("%s: %d up samples in the steady %s; want %d or more", inst, len(w), steadyFor, want)
		}
		for i := 1; i < len(w); i++ {
			if d := w[i] - w[i-1]; d != interval {
				t.Errorf("%s: up samples %d ms apart at %s while steady; want exactly one per interval",
					inst, d, time.UnixMilli(w[i]).Format(time.RFC3339Nano))
				break
			}
		}
		// The kill: the largest hole.
		hole, _ := testenv.LargestHole(in(killed, joined), killed, joined)
		worstKill = max(worstKill, hole.Milliseconds())
		// The join, then the graceful stop: duplicates and holes of each.
		for _, w := range [][]int64{in(joined, termed), in(termed, end)} {
			dups, maxGap := int64(0), int64(0)
			for i := 1; i < len(w); i++ {
				if w[i] == w[i-1] {
					dups++
				}
				maxGap = max(maxGap, w[i]-w[i-1])
			}
			worstJoinDup, worstJoinHole = max(worstJoinDup, dups), max(worstJoinHole, maxGap)
			dupHist[dups]++
		}
	}
	t.Logf("largest hole after the kill: %d ms; after the join and the graceful stop: most intervals scraped twice %d (targets x events by intervals scraped twice: %v), largest gap %d ms",
		worstKill, worstJoinDup, dupHist, worstJoinHole)
	// Detection: the gossip's (about 2 to 3 s on loopback), within the
	// lease's 2 s TTL plus its keep-alive granularity.
	if worstKill > 2*interval+4000 {
		t.Errorf("a target went %d ms without an up sample after a member was killed; want at most 2 intervals plus detection", worstKill)
	}
	if worstJoinDup > 2 {
		t.Errorf("a target was scraped twice for %d intervals when n4 joined or n1 stopped; want at most 2", worstJoinDup)
	}
	if worstJoinHole > interval {
		t.Errorf("a target missed an interval when n4 joined or n1 stopped (gap %d ms): the handover must make before it breaks", worstJoinHole)
	}

	// Status is written every status.interval (10s) at most: wait for it.
	counts := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := statusOf(t, ep, cl)
		clear(counts)
		sum := 0
		for _, a := range st.Agents {
			if a.Targets != nil {
				counts[a.Node] = *a.Targets
				sum += *a.Targets
			}
		}
		if sum == scrapeTargets && len(counts) == 2 && counts["n3"] > 0 && counts["n4"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status counts targets %v over the agents; want %d over n3 and n4", counts, scrapeTargets)
		}
		time.Sleep(time.Second)
	}
}

// statusOf returns procfleet status -o json.
func statusOf(t *testing.T, ep, cl string) clusterStatus {
	t.Helper()
	out, stderr, code := run(t, "status", ep, cl, "-o", "json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	return st
}
