package promoracle

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	pconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/histogram"
	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	pscrape "github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	yaml "go.yaml.in/yaml/v2"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/promtext"
	"github.com/procfleet/procfleet/prom/relabel"
)

// bodyCase is one target: a body and its job's settings.
type bodyCase struct {
	body            string
	honorLabels     bool
	honorTimestamps bool
	sampleLimit     int
	labelLimit      int
	rules           []config.RelabelConfig
	static          map[string]string // the target group's labels
}

func (c bodyCase) String() string {
	return fmt.Sprintf("body %q\nhonor_labels %v, honor_timestamps %v, sample_limit %d, label_limit %d, labels %v, rules %s",
		c.body, c.honorLabels, c.honorTimestamps, c.sampleLimit, c.labelLimit, c.static, describe(c.rules))
}

// sampleSet is what one scrape stored: series (labels as text) to
// value@timestamp, and the report series but scrape_duration_seconds.
type sampleSet struct {
	stamp  int64
	series map[string]string
	err    string // procfleet's error, not compared
	// failed holds Prometheus' error when its request failed (it logs
	// "Scrape failed"): procfleet is then given a failed request too.
	failed string
}

func (s sampleSet) equal(o sampleSet) bool {
	if len(s.series) != len(o.series) {
		return false
	}
	for k, v := range s.series {
		if o.series[k] != v {
			return false
		}
	}
	return true
}

func (s sampleSet) String() string {
	keys := make([]string, 0, len(s.series))
	for k := range s.series {
		keys = append(keys, k+" "+s.series[k])
	}
	slices.Sort(keys)
	return "\n    " + strings.Join(keys, "\n    ")
}

// add records a sample; report series keep only their name.
func (s sampleSet) add(ls plabels.Labels, t int64, v float64) {
	if value.IsStaleNaN(v) {
		return
	}
	name := ls.Get("__name__")
	switch name {
	case "scrape_duration_seconds":
		return
	case "up", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added":
		s.series[name] = strconv.FormatFloat(v, 'g', -1, 64)
		return
	}
	ts := strconv.FormatInt(t, 10)
	if t == s.stamp {
		ts = "NOW"
	}
	s.series[ls.String()] = strconv.FormatFloat(v, 'g', -1, 64) + "@" + ts
}

// capture is a storage.AppendableV2 that keeps every committed scrape by
// job, and refuses what Prometheus' head refuses of a label set
// (repeated names).
type capture struct {
	mu      sync.Mutex
	byJob   map[string][]sampleSet
	pending map[string]string // job: the error of its scrape in progress
}

// failureLog is a slog.Handler that records Prometheus' "Scrape failed"
// (a request or body that failed) by job, for the commit that follows.
type failureLog struct {
	c     *capture
	attrs []slog.Attr
}

func (h failureLog) Enabled(context.Context, slog.Level) bool { return true }

func (h failureLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "Scrape failed" {
		return nil
	}
	var job, msg string
	for _, a := range h.attrs {
		if a.Key == "scrape_pool" {
			job = a.Value.String()
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg = a.Value.String()
		}
		return true
	})
	h.c.mu.Lock()
	h.c.pending[job] = msg
	h.c.mu.Unlock()
	return nil
}

func (h failureLog) WithAttrs(as []slog.Attr) slog.Handler {
	return failureLog{c: h.c, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h failureLog) WithGroup(string) slog.Handler { return h }

type captureApp struct {
	c       *capture
	samples []capturedSample
}

type capturedSample struct {
	ls plabels.Labels
	t  int64
	v  float64
}

func (c *capture) AppenderV2(context.Context) storage.AppenderV2 { return &captureApp{c: c} }

func (a *captureApp) Append(_ storage.SeriesRef, ls plabels.Labels, _, t int64, v float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AOptions) (storage.SeriesRef, error) {
	if n, dup := ls.HasDuplicateLabelNames(); dup {
		return 0, fmt.Errorf("label name %q is not unique: invalid sample", n) // tsdb.ErrInvalidSample
	}
	a.samples = append(a.samples, capturedSample{ls.Copy(), t, v})
	return storage.SeriesRef(ls.Hash() | 1), nil
}

func (a *captureApp) Commit() error {
	var job string
	var stamp int64
	for _, s := range a.samples {
		if s.ls.Get("__name__") == "up" {
			job, stamp = s.ls.Get("job"), s.t
		}
	}
	set := sampleSet{stamp: stamp, series: map[string]string{}}
	for _, s := range a.samples {
		set.add(s.ls, s.t, s.v)
	}
	a.c.mu.Lock()
	set.failed = a.c.pending[job]
	delete(a.c.pending, job)
	a.c.byJob[job] = append(a.c.byJob[job], set)
	a.c.mu.Unlock()
	return nil
}

func (a *captureApp) Rollback() error { a.samples = nil; return nil }

func (c *capture) scrapes(job string) []sampleSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.byJob[job])
}

// promScrape has Prometheus' scrape manager scrape every case twice from
// an HTTP server and returns what it stored of each.
func promScrape(t *testing.T, cases []bodyCase) (addr string, got [][]sampleSet) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/case/"))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte(cases[i].body))
	}))
	t.Cleanup(srv.Close)
	addr = strings.TrimPrefix(srv.URL, "http://")

	var jobs []map[string]any
	groups := map[string][]*targetgroup.Group{}
	for i, c := range cases {
		name := fmt.Sprintf("c%d", i)
		job := map[string]any{
			"job_name": name, "metrics_path": fmt.Sprintf("/case/%d", i),
			"scrape_interval": "2s", "scrape_timeout": "2s",
			"honor_labels": c.honorLabels, "honor_timestamps": c.honorTimestamps,
			"sample_limit": c.sampleLimit, "label_limit": c.labelLimit,
			"metric_name_validation_scheme": "legacy", "metric_name_escaping_scheme": "underscores",
		}
		jobs = append(jobs, job)
		ls := model.LabelSet{}
		for k, v := range c.static {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		groups[name] = []*targetgroup.Group{{Source: name, Labels: ls, Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(addr)}}}}
	}
	doc, err := yaml.Marshal(map[string]any{"scrape_configs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pconfig.Load(string(doc), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Prometheus refuses the config: %v", err)
	}
	// Rules as Prometheus' YAML decoding makes them (see promConfig).
	for i, c := range cases {
		for _, rc := range c.rules {
			p, err := promConfig(rc)
			if err != nil {
				t.Fatalf("case %d: Prometheus refuses rule %s: %v", i, describe([]config.RelabelConfig{rc}), err)
			}
			cfg.ScrapeConfigs[i].MetricRelabelConfigs = append(cfg.ScrapeConfigs[i].MetricRelabelConfigs, p)
		}
	}
	cap := &capture{byJob: map[string][]sampleSet{}, pending: map[string]string{}}
	m, err := pscrape.NewManager(&pscrape.Options{DiscoveryReloadInterval: model.Duration(100 * time.Millisecond)},
		slog.New(failureLog{c: cap}), nil, nil, cap, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	tsets <- groups
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(tsets) }()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < len(cases); {
		if len(cap.scrapes(fmt.Sprintf("c%d", i))) >= 2 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus scraped case %d %d times in 60 s", i, len(cap.scrapes(fmt.Sprintf("c%d", i))))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.Stop()
	<-done
	for i := range cases {
		got = append(got, cap.scrapes(fmt.Sprintf("c%d", i))[:2])
	}
	return addr, got
}

// ourScrape parses the case's body as procfleet's scraper would, once per
// scrape Prometheus made, with Prometheus' stamps, and returns what it
// would write.
// A scrape whose request failed is not parsed, as procfleet does not parse
// a body it could not read.
func ourScrape(t *testing.T, c bodyCase, job, addr string, stamps []int64, failed []bool) []sampleSet {
	t.Helper()
	sc := config.DefaultScrapeConfig()
	sc.JobName, sc.HonorLabels, sc.HonorTimestamps = job, c.honorLabels, c.honorTimestamps
	ls := []string{scrape.AddressLabel, addr}
	for k, v := range c.static {
		ls = append(ls, k, v)
	}
	tg, err := scrape.TargetFromLabels(&sc, scrape.DiscoveredLabels(&sc, labels.FromStrings(ls...)))
	if err != nil {
		t.Fatal(err)
	}
	opt := promtext.ScrapeOptions{Target: tg.Labels, HonorLabels: c.honorLabels, HonorTimestamps: c.honorTimestamps,
		SampleLimit: c.sampleLimit, LabelLimit: c.labelLimit}
	if len(c.rules) > 0 {
		if opt.Rules, err = relabel.Compile(c.rules); err != nil {
			t.Fatal(err)
		}
	}
	p, err := promtext.NewScrapeParser(opt)
	if err != nil {
		t.Fatal(err)
	}
	var out []sampleSet
	for k, stamp := range stamps {
		var lines []byte
		var st promtext.ScrapeStats
		err := error(&promtext.ReadError{Err: fmt.Errorf("the request failed")})
		if !failed[k] {
			lines, st, err = p.Parse(strings.NewReader(c.body), stamp, nil)
		}
		lines = p.AppendReport(lines, stamp, promtext.ReportSeries{Up: err == nil, Stats: st})
		set := sampleSet{stamp: stamp, series: map[string]string{}}
		if err != nil {
			set.err = err.Error()
		}
		if n, cerr := promtext.Check(strings.NewReader(string(lines)), promtext.DefaultLimits()); cerr != nil || n == 0 {
			t.Fatalf("the output does not pass Check (%v):\n%s", cerr, lines)
		}
		for _, s := range parseText(t, lines) {
			set.add(s.ls, s.t, s.v)
		}
		out = append(out, set)
	}
	return out
}

// parseText reads procfleet's output with Prometheus' text parser.
func parseText(t *testing.T, b []byte) []capturedSample {
	t.Helper()
	p := newPromParser(b)
	var out []capturedSample
	for {
		ls, ts, v, ok, err := p()
		if err != nil {
			t.Fatalf("Prometheus cannot read procfleet's output: %v\n%s", err, b)
		}
		if !ok {
			return out
		}
		out = append(out, capturedSample{ls, ts, v})
	}
}

// TestScrapeAgainstPrometheus scrapes bodies with Prometheus' own scrape
// loop (v0.316.0, legacy name validation) and parses them with procfleet's
// ScrapeParser, stamped alike: the same series, values and timestamps,
// the same up, scrape_samples_scraped, scrape_samples_post_metric_relabeling
// and scrape_series_added, over two scrapes.
func TestScrapeAgainstPrometheus(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	r := rand.New(rand.NewPCG(7, 11))
	now := time.Now().UnixMilli()
	cases := append(slices.Clone(fixedBodyCases), realBodyCases(t)...)
	for len(cases) < n {
		if c, ok := randomBodyCase(r, now); ok {
			cases = append(cases, c)
		}
	}
	addr, prom := promScrape(t, cases)
	var up, down, known, transport int
	for i, c := range cases {
		stamps := []int64{prom[i][0].stamp, prom[i][1].stamp}
		failed := []bool{prom[i][0].failed != "", prom[i][1].failed != ""}
		for k := range 2 {
			if failed[k] {
				transport++
				t.Logf("case %d, scrape %d: Prometheus' request failed: %s", i, k+1, prom[i][k].failed)
			}
		}
		ours := ourScrape(t, c, fmt.Sprintf("c%d", i), addr, stamps, failed)
		for k := range 2 {
			if prom[i][k].equal(ours[k]) {
				continue
			}
			if reason := knownDifference(c, prom[i][k], ours[k]); reason != "" {
				known++
				t.Logf("case %d: known difference (%s)", i, reason)
				break
			}
			t.Fatalf("case %d, scrape %d: %s\nPrometheus:%s\nprocfleet:%s (%s)", i, k+1, c, prom[i][k], ours[k], ours[k].err)
		}
		if prom[i][0].series["up"] == "1" {
			up++
		} else {
			down++
		}
	}
	t.Logf("%d cases: %d scrapes up, %d down, %d known differences, %d of Prometheus' requests failed", len(cases), up, down, known, transport)
	if transport > len(cases) {
		t.Fatalf("%d of Prometheus' %d requests failed: the machine is too loaded for the comparison", transport, 2*len(cases))
	}
	if up < len(cases)/4 || down < len(cases)/4 {
		t.Fatalf("the draw is lopsided: %d up, %d down", up, down)
	}
}

// smallTimestamp matches a sample line whose timestamp is below 2^31.
var smallTimestamp = regexp.MustCompile(`^\S.*[ \t]\S+[ \t]+\d{1,9}[ \t]*$`)

// realBodyCases are what a node_exporter on the fixture tree and a
// VictoriaMetrics answer to a scrape, plain and with rules.
func realBodyCases(t *testing.T) []bodyCase {
	t.Chdir(filepath.Join("..", "..")) // testenv finds bin/ and testdata/ from the main module's root
	root := testenv.RepoRoot(t)
	ne := testenv.StartNodeExporter(t, filepath.Join(root, "testdata", "fixtures", "proc"), filepath.Join(root, "testdata", "fixtures", "sys"),
		[]string{"cpu", "meminfo", "diskstats", "netdev", "loadavg"}, "--no-collector.netdev.netlink")
	vm := testenv.StartVM(t)
	var out []bodyCase
	for _, u := range []string{ne.URL, "http://" + vm.Addr + "/metrics"} {
		body, err := testenv.Scrape(u)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out,
			bodyCase{body: body, honorTimestamps: true},
			bodyCase{body: body, honorTimestamps: true, rules: ruleSets[2], static: map[string]string{"zone": "eu"}},
			bodyCase{body: body, honorTimestamps: true, honorLabels: true, rules: ruleSets[7]})
	}
	return out
}

// knownDifference names a deliberate difference from Prometheus that
// explains a mismatch, or returns "".
func knownDifference(c bodyCase, prom, ours sampleSet) string {
	for _, v := range prom.series {
		if i := strings.IndexByte(v, '@'); i >= 0 && v[i+1:] != "NOW" {
			if ts, _ := strconv.ParseInt(v[i+1:], 10, 64); ts < 1<<31 {
				// VictoriaMetrics would read it as seconds.
				return "a timestamp before 1970-01-25, dropped"
			}
		}
	}
	for _, l := range strings.Split(c.body, "\n") {
		if smallTimestamp.MatchString(l) {
			// VictoriaMetrics would read it as seconds.
			return "a timestamp before 1970-01-25, dropped"
		}
	}
	if strings.Contains(ours.err, "missing closing quote") {
		// Prometheus takes a newline inside quotes into the value;
		// procfleet reads lines, and VictoriaMetrics would not take it.
		return "newline in quotes"
	}
	return ""
}

// newPromParser returns an iterator over the samples of a text body.
func newPromParser(b []byte) func() (plabels.Labels, int64, float64, bool, error) {
	p := promTextParser(b)
	return func() (plabels.Labels, int64, float64, bool, error) {
		for {
			e, err := p.Next()
			if err != nil {
				if err.Error() == "EOF" {
					return plabels.EmptyLabels(), 0, 0, false, nil
				}
				return plabels.EmptyLabels(), 0, 0, false, err
			}
			if e != entrySeries {
				continue
			}
			var ls plabels.Labels
			p.Labels(&ls)
			_, ts, v := p.Series()
			t := int64(math.MinInt64)
			if ts != nil {
				t = *ts
			}
			return ls, t, v, true, nil
		}
	}
}
