package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestTargetReportOnlyWhileScraping runs an agent member with a real
// scraper, wired as the command wires them, over a job of one real
// node_exporter: its target report and weight list are written while it
// scrapes the target. Once the job is gone the scraper stops, its reports
// to the member stop, and the member deletes both keys on its own timers
// (the report's at once, the weight list's once the target left the
// published sets); it then writes neither again, not even an empty report
// every TargetReportInterval, while its status is rewritten three times.
func TestTargetReportOnlyWhileScraping(t *testing.T) {
	ne := testenv.StartNodeExporter(t, "/proc", "/sys", []string{"loadavg"}, "--web.disable-exporter-metrics")
	addr := strings.TrimSuffix(strings.TrimPrefix(ne.URL, "http://"), "/metrics")
	withJob := []byte(oneUpstream + "status: {interval: 1s}\nscrape_configs:\n  - {job_name: fleet, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: ['" + addr + "']}]}\n")
	without := []byte(oneUpstream + "status: {interval: 1s}\n")
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	st, rev := bootstrap(t, cli, withJob)
	space, _ := keys.New("ct")
	reportKey, _ := space.TargetReport("a1")
	weightKey, _ := space.TargetWeight("a1")
	cfg := testConfig(e.Endpoints, "a1")
	cfg.TargetReportInterval = 200 * time.Millisecond
	cfg.TargetWeightInterval = time.Second
	sm := runScrapingMember(t, cfg)
	ctx := context.Background()

	var why string
	waitWhy(t, "a report of the target scraped and its weight", func() bool {
		reps, err := ReadTargetReports(ctx, cli, space)
		if err != nil || len(reps["a1"].Targets) != 1 || reps["a1"].Targets[0].LastScrape == nil {
			why = fmt.Sprintf("reports %+v, %v", reps, err)
			return false
		}
		resp, err := cli.Get(ctx, weightKey)
		if err != nil || len(resp.Kvs) != 1 {
			why = fmt.Sprintf("no weight list (%v)", err)
			return false
		}
		return true
	}, 20*time.Second, &why)

	if _, err := st.Set(ctx, without, rev); err != nil {
		t.Fatal(err)
	}
	var gone int64 // the revision at which both keys were seen gone
	waitWhy(t, "the report and the weight list deleted", func() bool {
		resp, err := cli.Txn(ctx).Then(clientv3.OpGet(reportKey), clientv3.OpGet(weightKey)).Commit()
		if err != nil {
			why = err.Error()
			return false
		}
		n := len(resp.Responses[0].GetResponseRange().Kvs) + len(resp.Responses[1].GetResponseRange().Kvs)
		if n != 0 || len(sm.mgr.Targets()) != 0 {
			why = fmt.Sprintf("%d of the two keys left, the scraper has %d targets", n, len(sm.mgr.Targets()))
			return false
		}
		gone = resp.Header.Revision
		return true
	}, 20*time.Second, &why)

	// The shipper's queue changes as the command reports it, so that the
	// status is rewritten once a second (status.interval); between two
	// writes an empty report would have been written several times (every
	// 200 ms).
	statusKey, _ := space.Status("a1")
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for q := 1; ; q++ {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				sm.m.ReportShipper(q, nil, 0)
			}
		}
	}()
	statuses := 0
	for wr := range cli.Watch(wctx, space.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(gone+1)) {
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			switch string(ev.Kv.Key) {
			case reportKey, weightKey:
				t.Fatalf("%s written again (%s at revision %d) though the member scrapes nothing", ev.Kv.Key, ev.Type, ev.Kv.ModRevision)
			case statusKey:
				statuses++
			}
		}
		if statuses >= 3 {
			return
		}
	}
	t.Fatalf("the status was written %d times in 20s after revision %d; want 3", statuses, gone)
}
