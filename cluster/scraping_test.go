package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// scrapeDoc is oneUpstream with a placement cluster job of n static
// targets and a placement local job for the members of zone a.
func scrapeDoc(n int) []byte {
	var ts []string
	for i := range n {
		ts = append(ts, fmt.Sprintf("'10.0.%d.%d:9100'", i/200, i%200))
	}
	doc := oneUpstream + "scrape_configs:\n"
	if n > 0 {
		doc += "  - {job_name: fleet, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: [" + strings.Join(ts, ", ") + "]}]}\n"
	}
	doc += "  - {job_name: pg, placement: local, members: {zone: a}, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: ['127.0.0.1:9187']}]}\n"
	// Faults: a discovery source that refuses, a target relabeled to a
	// scheme that cannot be scraped.
	doc += "  - {job_name: sd, http_sd_configs: [{url: 'http://127.0.0.1:1/sd'}]}\n"
	doc += "  - {job_name: ftp, static_configs: [{targets: ['10.9.9.9:21']}], relabel_configs: [{target_label: __scheme__, replacement: ftp}]}\n"
	return []byte(doc)
}

// scraped returns the addresses tm scrapes for job.
func (tm *testMember) scraped(job string) []string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var out []string
	for _, t := range tm.targets {
		if t.Job.JobName == job {
			out = append(out, t.Address)
		}
	}
	slices.Sort(out)
	return out
}

// owners checks that ms together scrape want targets of job fleet, each
// once, each member some; it returns why not.
func owners(ms []*testMember, want int) error {
	seen := map[string]string{}
	for _, tm := range ms {
		got := tm.scraped("fleet")
		if len(got) == 0 {
			return fmt.Errorf("%s scrapes nothing", tm.m.cfg.Node)
		}
		for _, a := range got {
			if o, ok := seen[a]; ok {
				return fmt.Errorf("%s scraped by %s and %s", a, o, tm.m.cfg.Node)
			}
			seen[a] = tm.m.cfg.Node
		}
	}
	if len(seen) != want {
		return fmt.Errorf("%d targets scraped, want %d", len(seen), want)
	}
	return nil
}

func leaders(ms []*testMember) []string {
	var out []string
	for _, tm := range ms {
		if tm.m.scrape.disc.leader.Load() {
			out = append(out, tm.m.cfg.Node)
		}
	}
	return out
}

// TestClusterScraping runs three agent members on a job of 60 static
// targets: one member is elected and publishes the set, every target is
// scraped by exactly one member, and the local job by the members it
// selects. The elected member stops: another takes discovery over and the
// two left share the targets; a fourth joins and takes its share; the job
// removed from the config is deleted from etcd and from every member.
func TestClusterScraping(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	st, rev := bootstrap(t, cli, scrapeDoc(60))
	var ms []*testMember
	for i, zone := range []string{"a", "a", "b"} {
		cfg := testConfig(e.Endpoints, fmt.Sprintf("a%d", i+1))
		cfg.Labels = map[string]string{"zone": zone}
		ms = append(ms, runMember(t, cfg))
	}
	var why error
	waitUntil(t, "60 targets over 3 members", func() bool { why = owners(ms, 60); return why == nil }, 20*time.Second)
	l := leaders(ms)
	if len(l) != 1 {
		t.Fatalf("elected members = %v; want one", l)
	}
	// The elected member reports the failing source; the owner of the
	// ftp target says why it is not scraped.
	waitUntil(t, "scrape errors in the status", func() bool {
		sd, ftp := false, false
		for _, tm := range ms {
			for _, e := range tm.status().ScrapeErrors {
				sd = sd || tm.m.cfg.Node == l[0] && strings.Contains(e, "discovery") && strings.Contains(e, "127.0.0.1:1")
				ftp = ftp || strings.Contains(e, "ftp 10.9.9.9:21") && strings.Contains(e, `scheme "ftp"`)
			}
		}
		return sd && ftp
	})
	resp, err := cli.Get(context.Background(), "/procfleet/ct/targets/fleet")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("manifest: %v, %v", resp, err)
	}
	for _, tm := range ms {
		got := tm.scraped("pg")
		if want := tm.m.cfg.Labels["zone"] == "a"; want != slices.Equal(got, []string{"127.0.0.1:9187"}) {
			t.Errorf("%s scrapes %v of the local job (zone %s)", tm.m.cfg.Node, got, tm.m.cfg.Labels["zone"])
		}
		if n := tm.status().Targets; n == nil || *n != len(tm.scraped("fleet"))+len(tm.scraped("pg")) {
			t.Errorf("%s status says %v targets", tm.m.cfg.Node, n)
		}
	}

	old := leaders(ms)[0]
	var rest []*testMember
	for _, tm := range ms {
		if tm.m.cfg.Node == old {
			if err := tm.stop(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rest = append(rest, tm)
	}
	waitUntil(t, "another member elected", func() bool { return len(leaders(rest)) == 1 })
	waitUntil(t, "60 targets over the 2 left", func() bool { why = owners(rest, 60); return why == nil }, 20*time.Second)

	cfg := testConfig(e.Endpoints, "a4")
	cfg.Labels = map[string]string{"zone": "b"}
	rest = append(rest, runMember(t, cfg))
	waitUntil(t, "60 targets over 3 with the newcomer", func() bool { why = owners(rest, 60); return why == nil }, 20*time.Second)

	if _, err := st.Set(context.Background(), scrapeDoc(0), rev); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the job gone from etcd and from the members", func() bool {
		for _, prefix := range []string{"/procfleet/ct/targets/fleet", "/procfleet/ct/target-chunks/fleet/"} {
			resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || resp.Count != 0 {
				return false
			}
		}
		for _, tm := range rest {
			if len(tm.scraped("fleet")) != 0 {
				return false
			}
		}
		return true
	})
}

// TestDiscoveryElectionOnlyWithJobs: members campaign for the discovery
// election while the config has placement cluster jobs, and only then.
// Once the jobs are gone, the elected member deletes what it published and
// resigns, and the waiting candidate withdraws: etcd holds no candidate
// key. With jobs again, one member is elected and publishes.
func TestDiscoveryElectionOnlyWithJobs(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	withJobs := []byte(oneUpstream + "scrape_configs:\n  - {job_name: fleet, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: ['10.0.0.1:9100', '10.0.0.2:9100']}]}\n")
	without := []byte(oneUpstream + "scrape_configs:\n  - {job_name: pg, placement: local, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: ['127.0.0.1:9187']}]}\n")
	st, rev := bootstrap(t, cli, withJobs)
	var ms []*testMember
	for i := range 2 {
		ms = append(ms, runMember(t, testConfig(e.Endpoints, fmt.Sprintf("a%d", i+1))))
	}
	count := func(prefix string) int64 {
		resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	election := ms[0].m.space.DiscoveryElection() + "/"
	var why error
	published := func() bool {
		why = owners(ms, 2)
		return why == nil && len(leaders(ms)) == 1 && count(election) == 2 && count("/procfleet/ct/targets/fleet") == 1
	}
	waitUntil(t, "one member elected, both candidates, the job published and scraped", published, 20*time.Second)

	rev, err := st.Set(context.Background(), without, rev)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "no candidate key, nothing published, no member elected", func() bool {
		return count(election) == 0 && count("/procfleet/ct/targets/") == 0 && count("/procfleet/ct/target-chunks/") == 0 &&
			len(leaders(ms)) == 0 && len(ms[0].scraped("fleet"))+len(ms[1].scraped("fleet")) == 0
	}, 20*time.Second)

	if _, err := st.Set(context.Background(), withJobs, rev); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "elected and published again", published, 20*time.Second)
	if why != nil {
		t.Fatal(why)
	}
}
