package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// discardSink takes a scraper's output and drops it.
type discardSink struct{ pool *emit.Pool }

func (d discardSink) Send(_ context.Context, b *emit.Buffer) error {
	d.pool.Put(b)
	return nil
}

// scrapingMember is an agent member with a real scraper, wired as the
// command wires them: the member's targets go to the scraper, the
// scraper's states come back to the member every 250 ms while the
// scraper is given targets or still has some, once more when it has
// none, then not until it is given targets again.
type scrapingMember struct {
	m   *Member
	mgr *scrape.Manager
}

func runScrapingMember(t *testing.T, cfg Config) *scrapingMember {
	t.Helper()
	local := config.DefaultAgent()
	local.Hostname = cfg.Node
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := New(cfg, local, log)
	if err != nil {
		t.Fatal(err)
	}
	pool := emit.NewPool(16)
	mgr, err := scrape.New(scrape.DefaultConfig(), scrape.Deps{Pool: pool, Sink: discardSink{pool}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	wg.Go(func() { _ = mgr.Run(ctx) })
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		tick.Stop()
		defer tick.Stop()
		var tickC <-chan time.Time
		given := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.Updates():
			case ts := <-m.ScrapeTargets():
				mgr.Apply(ts)
				given = len(ts) > 0
				if tickC == nil {
					tick.Reset(250 * time.Millisecond)
					tickC = tick.C
				}
			case <-tickC:
				states := mgr.Targets()
				m.ReportTargets(states)
				if len(states) == 0 && !given {
					tick.Stop()
					tickC = nil
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &scrapingMember{m: m, mgr: mgr}
}

// fleet returns the samples of the last scrape of each target of job
// fleet the member scrapes, by its "name" label.
func (sm *scrapingMember) fleet() map[string]int {
	out := map[string]int{}
	for _, s := range sm.mgr.Targets() {
		if s.Job == "fleet" {
			out[s.Labels.Get("name")] = s.Samples
		}
	}
	return out
}

// writeSeries makes the node_exporter reading dir expose n series of its
// own (written aside, then renamed: it never reads half a file).
func writeSeries(t *testing.T, dir string, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# TYPE procfleet_test_series gauge\n")
	for i := range n {
		fmt.Fprintf(&b, "procfleet_test_series{i=\"%d\"} %d\n", i, i)
	}
	tmp := filepath.Join(dir, "series.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "series.prom")); err != nil {
		t.Fatal(err)
	}
}

// expectedOwners computes, from etcd's state at one revision (the
// published set of job fleet, the registered agents, the weight lists),
// the owner of each target by its "name" label, and its published class.
func expectedOwners(t *testing.T, cli *clientv3.Client, space keys.Space) (owners map[string]string, classes map[string]uint64, err error) {
	ctx := context.Background()
	resp, err := cli.Get(ctx, space.Prefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, err
	}
	rev := resp.Header.Revision
	ws, err := ReadTargetWeights(ctx, cli, space, rev)
	if err != nil {
		return nil, nil, err
	}
	agents, err := cli.Get(ctx, space.MembersOf(keys.Agent), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, kv := range agents.Kvs {
		_, n, _ := space.ParseMember(string(kv.Key))
		names = append(names, n)
	}
	sets, err := ReadPublishedTargets(ctx, cli, space)
	if err != nil {
		return nil, nil, err
	}
	var refs []targets.Ref
	var byRef []string
	classes = map[string]uint64{}
	for _, tg := range sets["fleet"] {
		id := tg.ID("fleet")
		c := ws[targets.WeightKey(id)]
		refs = append(refs, targets.Ref{ID: id, Samples: c})
		for _, l := range tg.Labels {
			if l.Name == "name" {
				byRef = append(byRef, l.Value)
				classes[l.Value] = c
			}
		}
	}
	res, err := targets.Assign(targets.DefaultConfig(), names, refs)
	if err != nil {
		return nil, nil, err
	}
	owners = map[string]string{}
	for i, o := range res.Owners {
		owners[byRef[i]] = o
	}
	// Once handovers are over, each member's list holds exactly the
	// targets it owns.
	lists, err := cli.Get(ctx, space.TargetWeights(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, nil, err
	}
	held := map[string]int{}
	for _, kv := range lists.Kvs {
		node, _ := space.ParseTargetWeight(string(kv.Key))
		ws, err := targets.DecodeWeights(kv.Value)
		if err != nil {
			return nil, nil, err
		}
		held[node] = len(ws)
		for _, w := range ws {
			i := slices.IndexFunc(refs, func(r targets.Ref) bool { return targets.WeightKey(r.ID) == w.Key })
			if i < 0 || res.Owners[i] != node {
				what := "an unknown target"
				if i >= 0 {
					what = fmt.Sprintf("%s (class %d, owner %s, merged %d)", byRef[i], w.Class, res.Owners[i], refs[i].Samples)
				}
				return nil, nil, fmt.Errorf("%s still publishes the weight of %s, which it does not own", node, what)
			}
		}
	}
	for _, o := range res.Owners {
		held[o]--
	}
	for node, n := range held {
		if n != 0 {
			return nil, nil, fmt.Errorf("%s publishes %d weights more than it owns targets", node, n)
		}
	}
	return owners, classes, nil
}

// TestClusterWeights runs four agent members with real scrapers over a
// job of real node_exporters: four heavy targets (about 3,000 samples)
// and 80 light ones (about 30 samples: one node_exporter under 80 target
// labels). Before any weight is published every target weighs the same;
// once each member published the classes of what it scraped, the members
// converge on the owners that etcd's state gives (checked against
// targets.Assign over the agents, the published set and the weight lists
// read at one revision), the heavy targets end up on four members and
// samples per member stay within 1.2 times the ideal; a steady fleet then
// writes no weight. One heavy target turns light: its owner publishes
// the new class, and every member moves the targets as etcd's state
// says, again within the bound.
func TestClusterWeights(t *testing.T) {
	var heavyDirs []string
	var static []string
	for i := range 5 {
		dir := t.TempDir()
		n := 2996
		if i == 4 {
			n = 26
		}
		writeSeries(t, dir, n)
		ne := testenv.StartNodeExporter(t, "/proc", "/sys", []string{"textfile"},
			"--collector.textfile.directory="+dir, "--web.disable-exporter-metrics")
		addr := strings.TrimSuffix(strings.TrimPrefix(ne.URL, "http://"), "/metrics")
		if i < 4 {
			heavyDirs = append(heavyDirs, dir)
			static = append(static, fmt.Sprintf("{targets: ['%s'], labels: {name: heavy%d}}", addr, i))
			continue
		}
		for j := range 80 {
			static = append(static, fmt.Sprintf("{targets: ['%s'], labels: {name: light%02d}}", addr, j))
		}
	}
	doc := oneUpstream + "scrape_configs:\n  - {job_name: fleet, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [" +
		strings.Join(static, ", ") + "]}\n"
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, []byte(doc))
	space, _ := keys.New("ct")
	var ms []*scrapingMember
	for i := range 4 {
		cfg := testConfig(e.Endpoints, fmt.Sprintf("a%d", i+1))
		cfg.TargetWeightInterval = 500 * time.Millisecond
		ms = append(ms, runScrapingMember(t, cfg))
	}

	// converged reports whether every member scrapes exactly the targets
	// etcd's state gives it, every target having a published class, and
	// returns the samples per member over the ideal share and the owners.
	var why string
	converged := func(heavyClass func(name string, c uint64) bool) (ratio float64, owners map[string]string, ok bool) {
		want, classes, err := expectedOwners(t, cli, space)
		if err != nil {
			why = err.Error()
			return 0, nil, false
		}
		if len(want) != 84 {
			why = fmt.Sprintf("%d targets published", len(want))
			return 0, nil, false
		}
		for name, c := range classes {
			if !heavyClass(name, c) {
				why = fmt.Sprintf("%s has class %d", name, c)
				return 0, nil, false
			}
		}
		var total, top int
		for _, sm := range ms {
			got, sum := sm.fleet(), 0
			for name, samples := range got {
				if want[name] != sm.m.cfg.Node {
					why = fmt.Sprintf("%s scraped by %s; etcd's state gives it to %s", name, sm.m.cfg.Node, want[name])
					return 0, nil, false
				}
				sum += samples
			}
			for name, o := range want {
				if o == sm.m.cfg.Node && got[name] == 0 {
					why = fmt.Sprintf("%s not scraped yet by its owner %s", name, o)
					return 0, nil, false
				}
			}
			total += sum
			top = max(top, sum)
		}
		return float64(top) / (float64(total) / float64(len(ms))), want, true
	}
	classOf := func(heavy map[string]bool) func(string, uint64) bool {
		return func(name string, c uint64) bool {
			if heavy[name] {
				return c == 3072
			}
			return c == 32 // 30 samples
		}
	}
	heavy := map[string]bool{"heavy0": true, "heavy1": true, "heavy2": true, "heavy3": true}
	var ratio float64
	var before map[string]string
	start := time.Now()
	waitWhy(t, "the members converged on the weighted owners", func() bool {
		var ok bool
		ratio, before, ok = converged(classOf(heavy))
		return ok
	}, 90*time.Second, &why)
	t.Logf("converged after %s", time.Since(start))
	t.Logf("weighted: the busiest member scrapes %.3fx the ideal samples", ratio)
	if ratio > 1.2 {
		t.Errorf("busiest member scrapes %.3fx the ideal samples, want <= 1.2", ratio)
	}
	hosts := map[string]bool{}
	for name := range heavy {
		hosts[before[name]] = true
	}
	if len(hosts) != 4 {
		t.Errorf("the heavy targets are on %d members, want 4: %v", len(hosts), before)
	}

	// A steady fleet writes no weight (3 of the members' write intervals).
	wctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	writes := 0
	for wr := range cli.Watch(wctx, space.TargetWeights(), clientv3.WithPrefix()) {
		writes += len(wr.Events)
	}
	if writes != 0 {
		t.Errorf("%d weight writes in a steady fleet", writes)
	}

	// heavy0 turns light.
	writeSeries(t, heavyDirs[0], 26)
	delete(heavy, "heavy0")
	var after map[string]string
	waitWhy(t, "the members converged after heavy0 turned light", func() bool {
		var ok bool
		ratio, after, ok = converged(classOf(heavy))
		return ok
	}, 90*time.Second, &why)
	moved := 0
	for name, o := range after {
		if before[name] != o {
			moved++
		}
	}
	t.Logf("heavy0 turned light: %d targets moved; the busiest member scrapes %.3fx the ideal samples", moved, ratio)
	if moved == 0 {
		t.Error("no target moved")
	}
	if ratio > 1.2 {
		t.Errorf("busiest member scrapes %.3fx the ideal samples, want <= 1.2", ratio)
	}
}

// waitWhy polls cond until it holds, or fails the test after timeout
// saying what and the last *why.
func waitWhy(t *testing.T, what string, cond func() bool, timeout time.Duration, why *string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for !cond() {
		if time.Since(lastLog) > 2*time.Second {
			t.Logf("waiting: %s", *why)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, *why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWeightsGainedAtOnce: a member whose weight list gains a target (a
// target added to the job, scraped for the first time) writes it within
// a second, whatever its TargetWeightInterval (an hour here, so that
// only the first write would be allowed otherwise).
func TestWeightsGainedAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeSeries(t, dir, 96) // 100 samples with node_exporter's own 4
	ne := testenv.StartNodeExporter(t, "/proc", "/sys", []string{"textfile"},
		"--collector.textfile.directory="+dir, "--web.disable-exporter-metrics")
	addr := strings.TrimSuffix(strings.TrimPrefix(ne.URL, "http://"), "/metrics")
	doc := func(names ...string) []byte {
		var static []string
		for _, n := range names {
			static = append(static, fmt.Sprintf("{targets: ['%s'], labels: {name: %s}}", addr, n))
		}
		return []byte(oneUpstream + "scrape_configs:\n  - {job_name: fleet, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [" +
			strings.Join(static, ", ") + "]}\n")
	}
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	st, rev := bootstrap(t, cli, doc("a"))
	space, _ := keys.New("ct")
	cfg := testConfig(e.Endpoints, "a1")
	cfg.TargetWeightInterval = time.Hour
	runScrapingMember(t, cfg)
	var why string
	published := func(n int) func() bool {
		return func() bool {
			sets, err := ReadPublishedTargets(context.Background(), cli, space)
			if err != nil || len(sets["fleet"]) != n {
				why = fmt.Sprintf("%d targets published, %v", len(sets["fleet"]), err)
				return false
			}
			ws, err := ReadTargetWeights(context.Background(), cli, space, 0)
			for _, tg := range sets["fleet"] {
				if c := ws[targets.WeightKey(tg.ID("fleet"))]; c != 96 {
					why = fmt.Sprintf("%s %v has class %d (%v)", tg.Address, tg.Labels, c, err)
					return false
				}
			}
			return true
		}
	}
	waitWhy(t, "the first target's class published", published(1), 20*time.Second, &why)
	if _, err := st.Set(context.Background(), doc("a", "b"), rev); err != nil {
		t.Fatal(err)
	}
	waitWhy(t, "the second target's class published", published(2), 20*time.Second, &why)
}
