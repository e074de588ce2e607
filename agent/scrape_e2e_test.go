package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
	"github.com/procfleet/procfleet/prom/labels"
)

// scrapeTarget returns the target of job at u (http://host:port/path), as
// discovery makes it, with extra labels.
func scrapeTarget(t *testing.T, job *config.ScrapeConfig, u string, extra ...string) scrape.Target {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ls := scrape.DiscoveredLabels(job, labels.FromStrings(append([]string{scrape.AddressLabel, pu.Host}, extra...)...))
	b := labels.NewBuilder(ls)
	b.Set(scrape.MetricsPathLabel, pu.Path)
	tg, err := scrape.TargetFromLabels(job, b.Labels(nil))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func scrapeJob(name string) *config.ScrapeConfig {
	j := config.DefaultScrapeConfig()
	j.JobName = name
	j.ScrapeInterval = config.PromDuration(time.Second)
	j.ScrapeTimeout = config.PromDuration(time.Second)
	return &j
}

// waitSeries polls VictoriaMetrics until match selects at least n series.
func waitSeries(t *testing.T, vm *testenv.VM, match string, n int) []testenv.Series {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		vm.Flush(t)
		series, err := vm.TryExport(match)
		if err == nil && len(series) >= n {
			return series
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaMetrics holds %d series for %s (err %v); want %d", len(series), match, err, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAgentScrapesToVictoriaMetrics runs an agent with a generator and
// three real targets (node_exporter on the fixture tree, VictoriaMetrics'
// own /metrics and the agent's own /metrics) into a real
// VictoriaMetrics: the scraped series arrive with their targets' job,
// instance and labels, values as the target gives them, and up 1; the
// generator's series keep the agent's instance and job.
func TestAgentScrapesToVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	root := testenv.RepoRoot(t)
	proc, sys := filepath.Join(root, "testdata", "fixtures", "proc"), filepath.Join(root, "testdata", "fixtures", "sys")
	ne := testenv.StartNodeExporter(t, proc, sys, []string{"cpu", "loadavg"})
	cfg := fixtureConfig(t, vm.ImportURL, "scrape-host")
	g := &cfg.Generators
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	a, _ := runAgent(t, cfg)
	node := scrapeTarget(t, scrapeJob("node"), ne.URL, "zone", "eu-1")
	self := scrapeTarget(t, scrapeJob("procfleet-self"), "http://"+a.Addr()+"/metrics")
	vmt := scrapeTarget(t, scrapeJob("vm"), "http://"+vm.Addr+"/metrics")
	a.SetTargets([]scrape.Target{node, self, vmt})

	for _, tg := range []scrape.Target{node, self, vmt} {
		sel := `up{job="` + tg.Job.JobName + `",instance="` + tg.Address + `"}`
		for _, s := range waitSeries(t, vm, sel, 1) {
			for _, v := range s.Values {
				if v != 1 {
					t.Fatalf("%s holds %v", sel, s.Values)
				}
			}
		}
	}
	direct := ne.Scrape(t)
	series := waitSeries(t, vm, `node_cpu_seconds_total{job="node"}`, 8)
	for _, s := range series {
		if s.Metric["instance"] != node.Address || s.Metric["zone"] != "eu-1" {
			t.Fatalf("series %v lacks the target's labels", s.Metric)
		}
		delete(s.Metric, "job")
		delete(s.Metric, "instance")
		delete(s.Metric, "zone")
		if want, ok := direct[s.Key()]; !ok || s.Values[0] != want {
			t.Fatalf("%s = %v; node_exporter says %v", s.Key(), s.Values, want)
		}
	}
	waitSeries(t, vm, `procfleet_scrape_scrapes_total{job="procfleet-self"}`, 1)
	waitSeries(t, vm, `vm_app_version{job="vm"}`, 1)
	// The generator's series keep the agent's labels, and the scraped
	// ones are not stamped with them.
	waitSeries(t, vm, `node_load1{job="procfleet",instance="scrape-host"}`, 1)
	if s := vm.Export(t, `{__name__=~"node_cpu.*|up",instance="scrape-host"}`); len(s) != 0 {
		t.Fatalf("scraped series carry the agent's instance: %v", s[0].Metric)
	}
	for _, st := range a.Targets() {
		if st.Health != scrape.HealthUp {
			t.Errorf("target %s of %s: %s %s", st.Target, st.Job, st.Health, st.LastError)
		}
	}
	if body := httpGet(t, "http://"+a.Addr()+"/metrics"); !strings.Contains(body, "procfleet_scrape_targets 3") {
		t.Error("the agent's /metrics lacks procfleet_scrape_targets 3")
	}
}

// TestAgentDedicatedScraper runs an agent with every generator disabled:
// it starts, takes its targets before Run, and delivers only them.
func TestAgentDedicatedScraper(t *testing.T) {
	vm := testenv.StartVM(t)
	cfg := fixtureConfig(t, vm.ImportURL, "scraper-host")
	g := &cfg.Generators
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Loadavg, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("an agent without generators: %v", err)
	}
	tg := scrapeTarget(t, scrapeJob("vm"), "http://"+vm.Addr+"/metrics")
	a.SetTargets([]scrape.Target{tg})
	startAgent(t, a)
	waitSeries(t, vm, `up{job="vm",instance="`+vm.Addr+`"}`, 1)
	waitSeries(t, vm, `vm_app_version{job="vm"}`, 1)
	if s := vm.Export(t, `{instance="scraper-host"}`); len(s) != 0 {
		t.Fatalf("a dedicated scraper wrote %v", s[0].Metric)
	}
}

// TestAgentScansNotDelayedByScrapes runs a generator every 200 ms next to
// targets that hang, answer endlessly (parsed up to a 32 MB limit) or
// gzip-bomb: the generator runs at every one of its instants meanwhile,
// without an overrun.
func TestAgentScansNotDelayedByScrapes(t *testing.T) {
	vm := testenv.StartVM(t)
	cfg := fixtureConfig(t, vm.ImportURL, "busy-host")
	g := &cfg.Generators
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Enabled = false
	}
	g.Process.Enabled = false
	g.Loadavg.Interval = config.Duration(200 * time.Millisecond)
	a, _ := runAgent(t, cfg)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	flood := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := []byte("flood_total{i=\"0123456789\"} 1\n")
		block := bytes.Repeat(line, 2048)
		for r.Context().Err() == nil {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	}))
	t.Cleanup(flood.Close)
	floodJob := scrapeJob("flood")
	floodJob.BodySizeLimit = 32_000_000
	a.SetTargets([]scrape.Target{
		scrapeTarget(t, scrapeJob("hang"), hang.URL+"/metrics"),
		scrapeTarget(t, floodJob, flood.URL+"/metrics"),
	})
	runs := func() float64 {
		v, _ := testenv.SumMetric(httpGet(t, "http://"+a.Addr()+"/metrics"), `procfleet_generator_runs_total{generator="loadavg"}`)
		return v
	}
	failures := func() float64 {
		v, _ := testenv.SumMetric(httpGet(t, "http://"+a.Addr()+"/metrics"), "procfleet_scrape_failures_total")
		return v
	}
	start, t0 := runs(), time.Now()
	deadline := time.Now().Add(40 * time.Second)
	for failures() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("the faulty targets failed %v times in 40 s", failures())
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	got := runs() - start
	body := httpGet(t, "http://"+a.Addr()+"/metrics")
	overruns, _ := testenv.SumMetric(body, `procfleet_scheduler_overruns_total{generator="loadavg"}`)
	if want := float64(elapsed/(200*time.Millisecond)) - 2; got < want || overruns != 0 {
		t.Fatalf("loadavg ran %v times in %s (want %v or more), %v overruns, while the scraper failed %v scrapes",
			got, elapsed, want, overruns, failures())
	}
	t.Logf("loadavg ran %v times in %s while the scraper failed %v scrapes", got, elapsed, failures())
}

// TestAgentSpoolsScrapes stops VictoriaMetrics while the agent scrapes:
// the scrapes of the outage are spooled and delivered when it is back,
// with their targets' labels and their instants.
func TestAgentSpoolsScrapes(t *testing.T) {
	vm := testenv.StartVM(t)
	root := testenv.RepoRoot(t)
	ne := testenv.StartNodeExporter(t, filepath.Join(root, "testdata", "fixtures", "proc"),
		filepath.Join(root, "testdata", "fixtures", "sys"), []string{"loadavg"})
	cfg := fixtureConfig(t, vm.ImportURL, "spool-host")
	cfg.Spool.Dir = t.TempDir()
	cfg.Ship.ProbeInterval = config.Duration(500 * time.Millisecond)
	a, _ := runAgent(t, cfg)
	tg := scrapeTarget(t, scrapeJob("node"), ne.URL)
	a.SetTargets([]scrape.Target{tg})
	sel := `up{job="node",instance="` + tg.Address + `"}`
	waitSeries(t, vm, sel, 1)

	vm.Kill()
	down := time.Now()
	scraped := func() float64 {
		v, _ := testenv.SumMetric(httpGet(t, "http://"+a.Addr()+"/metrics"), "procfleet_scrape_scrapes_total")
		return v
	}
	before := scraped()
	waitFor(t, 30*time.Second, "four scrapes during the outage", func() bool { return scraped() >= before+4 })
	up := time.Now()
	vm.Restart(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		vm.Flush(t)
		n := 0
		if s, err := vm.TryExport(sel); err == nil && len(s) == 1 {
			for _, ts := range s[0].Timestamps {
				if ts > down.UnixMilli() && ts < up.UnixMilli() {
					n++
				}
			}
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d samples of %s from the outage arrived", n, sel)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if s := vm.Export(t, `{__name__=~"up|node_load1",job="procfleet",instance="spool-host",zone=""}`); len(s) != 1 || s[0].Metric["__name__"] != "node_load1" {
		t.Fatalf("after the spool, the agent's instance and job hold %d series (want only its own node_load1)", len(s))
	}
}
