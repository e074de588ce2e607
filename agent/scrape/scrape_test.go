package scrape

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestScrapeNodeExporter scrapes the pinned node_exporter on the fixture
// tree: every series of a direct scrape is delivered with the same value,
// with job, instance and the target's own labels, stamped on the
// target's instants, together with up 1 and the other report series.
func TestScrapeNodeExporter(t *testing.T) {
	proc, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	sys, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "sys"))
	ne := testenv.StartNodeExporter(t, proc, sys, []string{"cpu", "meminfo", "loadavg", "netdev", "diskstats"}, "--no-collector.netdev.netlink")
	h := startManager(t, DefaultConfig(), Deps{})
	job := testJob("node", 500*time.Millisecond)
	tg := target(t, job, ne.URL, "zone", "eu-1")
	h.m.Apply([]Target{tg})
	waitFor(t, "two scrapes", 20*time.Second, func() bool { return len(h.sink.reports(t, "up", tg.Address)) >= 2 })

	want := ne.Scrape(t)
	got := map[string]float64{}
	stamps := map[int64]bool{}
	for _, s := range h.sink.samples(t) {
		if s.Labels["job"] != "node" || s.Labels["instance"] != tg.Address || s.Labels["zone"] != "eu-1" {
			t.Fatalf("sample %s lacks the target's labels", s.Key())
		}
		stamps[s.Timestamp] = true
		delete(s.Labels, "job")
		delete(s.Labels, "instance")
		delete(s.Labels, "zone")
		got[s.Key()] = s.Value
	}
	phase := Phase(tg.Key(), job.ScrapeInterval.D()).Milliseconds()
	for ts := range stamps {
		if ts%500 != phase {
			t.Fatalf("stamp %d is not on the target's instants (phase %d ms of 500)", ts, phase)
		}
	}
	compared := 0
	for k, v := range want {
		if !strings.HasPrefix(k, "node_") || strings.HasPrefix(k, "node_scrape_collector_duration") {
			continue // the exporter's own, changing between scrapes
		}
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (delivered: %v); node_exporter says %v", k, g, ok, v)
		}
		compared++
	}
	if compared < 50 {
		t.Fatalf("compared only %d node_ series", compared)
	}
	if got["up"] != 1 || got["scrape_samples_scraped"] < float64(compared) || got["scrape_series_added"] != 0 {
		t.Fatalf("report: up %v, scraped %v, series added %v (of the last scrape)", got["up"], got["scrape_samples_scraped"], got["scrape_series_added"])
	}
	st, ok := h.state(tg.Address)
	if !ok || st.Health != HealthUp || st.LastError != "" || st.Samples < compared || st.LastScrape.IsZero() {
		t.Fatalf("state %+v", st)
	}
}

// TestScrapeVictoriaMetrics scrapes a real VictoriaMetrics' own /metrics
// (gzip-compressed when asked, as node_exporter's is).
func TestScrapeVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	h := startManager(t, DefaultConfig(), Deps{})
	tg := target(t, testJob("vm", 500*time.Millisecond), "http://"+vm.Addr+"/metrics")
	h.m.Apply([]Target{tg})
	waitFor(t, "a scrape", 20*time.Second, func() bool { return len(h.sink.reports(t, "up", tg.Address)) >= 1 })
	up := h.sink.reports(t, "up", tg.Address)[0]
	if up.Value != 1 {
		st, _ := h.state(tg.Address)
		t.Fatalf("up = %v: %s", up.Value, st.LastError)
	}
	n := 0
	for _, s := range h.sink.samples(t) {
		if strings.HasPrefix(s.Name, "vm_") && s.Labels["job"] == "vm" && s.Labels["instance"] == vm.Addr {
			n++
		}
	}
	if n < 100 {
		t.Fatalf("%d vm_ samples delivered", n)
	}
}

// TestScrapeTimestampsAgree runs two managers, as two members during a
// handover, on one target: both stamp their samples with the same
// instants.
func TestScrapeTimestampsAgree(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		w.Write([]byte("a 1\n"))
	}))
	t.Cleanup(srv.Close)
	job := testJob("j", 500*time.Millisecond)
	var hs [2]*harness
	for i := range hs {
		hs[i] = startManager(t, DefaultConfig(), Deps{})
		hs[i].m.Apply([]Target{target(t, job, srv.URL+"/metrics")})
	}
	addr := hostOf(srv.URL)
	waitFor(t, "five scrapes each", 20*time.Second, func() bool {
		return len(hs[0].sink.reports(t, "a", addr)) >= 5 && len(hs[1].sink.reports(t, "a", addr)) >= 5
	})
	stamps := map[int64]int{}
	for _, h := range hs {
		for _, s := range h.sink.reports(t, "a", addr)[:5] {
			stamps[s.Timestamp]++
		}
	}
	shared := 0
	for _, n := range stamps {
		if n == 2 {
			shared++
		}
	}
	if shared < 4 {
		t.Fatalf("the managers share %d of their first 5 stamps: %v", shared, stamps)
	}
}

// TestScrapeEtcd scrapes a real etcd's own /metrics.
func TestScrapeEtcd(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	h := startManager(t, DefaultConfig(), Deps{})
	tg := target(t, testJob("etcd", 500*time.Millisecond), e.Endpoints[0]+"/metrics")
	h.m.Apply([]Target{tg})
	waitFor(t, "a scrape", 20*time.Second, func() bool { return len(h.sink.reports(t, "up", tg.Address)) >= 1 })
	if up := h.sink.reports(t, "up", tg.Address)[0]; up.Value != 1 {
		st, _ := h.state(tg.Address)
		t.Fatalf("up = %v: %s", up.Value, st.LastError)
	}
	if l := h.sink.reports(t, "etcd_server_has_leader", tg.Address); len(l) == 0 || l[0].Value != 1 || l[0].Labels["job"] != "etcd" {
		t.Fatalf("etcd_server_has_leader = %+v", l)
	}
}
