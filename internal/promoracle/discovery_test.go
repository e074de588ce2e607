package promoracle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/file"
	phttp "github.com/prometheus/prometheus/discovery/http"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	plabels "github.com/prometheus/prometheus/model/labels"
	prelabel "github.com/prometheus/prometheus/model/relabel"
	yaml "go.yaml.in/yaml/v2"
	yaml3 "go.yaml.in/yaml/v3"

	pfdiscovery "github.com/procfleet/procfleet/cluster/discovery"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// PopulateDiscoveredLabels below is Prometheus' own (scrape/target.go of
// the version in go.mod), copied because importing package scrape would
// compile most of Prometheus: TestPopulateIsPrometheus checks that its
// text is still Prometheus' text. Only the config type differs:
// *config.ScrapeConfig there, *scrapeConfig here, with the fields and
// methods it reads.

type scrapeConfig struct {
	JobName        string
	ScrapeInterval model.Duration
	ScrapeTimeout  model.Duration
	MetricsPath    string
	Scheme         string
	Params         url.Values
}

// Prometheus' native-histogram switches: procfleet has none, so they are
// off, as in a Prometheus config that does not set them.
func (*scrapeConfig) ConvertClassicHistogramsToNHCBEnabled() bool { return false }
func (*scrapeConfig) AlwaysScrapeClassicHistogramsEnabled() bool  { return false }
func (*scrapeConfig) ScrapeNativeHistogramsEnabled() bool         { return false }

const (
	convertClassicHistogramsToNHCBLabel = "__convert_classic_histograms_to_nhcb__"
	alwaysScrapeClassicHistogramsLabel  = "__always_scrape_classic_histograms__"
	scrapeNativeHistogramsLabel         = "__scrape_native_histograms__"
)

func PopulateDiscoveredLabels(lb *plabels.Builder, cfg *scrapeConfig, tLabels, tgLabels model.LabelSet) {
	lb.Reset(plabels.EmptyLabels())

	for ln, lv := range tLabels {
		lb.Set(string(ln), string(lv))
	}
	for ln, lv := range tgLabels {
		if _, ok := tLabels[ln]; !ok {
			lb.Set(string(ln), string(lv))
		}
	}

	// Copy labels into the labelset for the target if they are not set already.
	scrapeLabels := []plabels.Label{
		{Name: model.JobLabel, Value: cfg.JobName},
		{Name: model.ScrapeIntervalLabel, Value: cfg.ScrapeInterval.String()},
		{Name: model.ScrapeTimeoutLabel, Value: cfg.ScrapeTimeout.String()},
		{Name: model.MetricsPathLabel, Value: cfg.MetricsPath},
		{Name: model.SchemeLabel, Value: cfg.Scheme},
		{Name: convertClassicHistogramsToNHCBLabel, Value: strconv.FormatBool(cfg.ConvertClassicHistogramsToNHCBEnabled())},
		{Name: alwaysScrapeClassicHistogramsLabel, Value: strconv.FormatBool(cfg.AlwaysScrapeClassicHistogramsEnabled())},
		{Name: scrapeNativeHistogramsLabel, Value: strconv.FormatBool(cfg.ScrapeNativeHistogramsEnabled())},
	}

	for _, l := range scrapeLabels {
		if lb.Get(l.Name) == "" {
			lb.Set(l.Name, l.Value)
		}
	}
	// Encode scrape query parameters as labels.
	for k, v := range cfg.Params {
		if name := model.ParamLabelPrefix + k; len(v) > 0 && lb.Get(name) == "" {
			lb.Set(name, v[0])
		}
	}
}

// The copy above is Prometheus' function, word for word, and the three
// constants have Prometheus' values.
func TestPopulateIsPrometheus(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		t.Fatalf("cannot find Prometheus' source: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "scrape", "target.go")
	theirs := funcs(t, path)["PopulateDiscoveredLabels"]
	want := strings.NewReplacer("*config.ScrapeConfig", "*scrapeConfig", "*labels.Builder", "*plabels.Builder",
		"labels.EmptyLabels", "plabels.EmptyLabels", "[]labels.Label", "[]plabels.Label").Replace(theirs)
	if ours := funcs(t, "discovery_test.go")["PopulateDiscoveredLabels"]; theirs == "" || ours != want {
		t.Errorf("PopulateDiscoveredLabels differs from Prometheus':\n%s\nPrometheus':\n%s", ours, want)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{
		`const convertClassicHistogramsToNHCBLabel = "` + convertClassicHistogramsToNHCBLabel + `"`,
		`const alwaysScrapeClassicHistogramsLabel = "` + alwaysScrapeClassicHistogramsLabel + `"`,
		`const scrapeNativeHistogramsLabel = "` + scrapeNativeHistogramsLabel + `"`,
	} {
		if !strings.Contains(string(src), c) {
			t.Errorf("scrape/target.go has no %s", c)
		}
	}
}

// promJob is job in the form PopulateDiscoveredLabels reads, with its
// relabel_configs as Prometheus' decoding makes them.
func promJob(t *testing.T, job *config.ScrapeConfig) (*scrapeConfig, []*prelabel.Config) {
	t.Helper()
	sc := &scrapeConfig{
		JobName: job.JobName, ScrapeInterval: model.Duration(job.ScrapeInterval), ScrapeTimeout: model.Duration(job.ScrapeTimeout),
		MetricsPath: job.MetricsPath, Scheme: job.Scheme, Params: url.Values(job.Params),
	}
	var rcs []*prelabel.Config
	for _, c := range job.RelabelConfigs {
		p, err := promConfig(c)
		if err != nil {
			t.Fatalf("Prometheus refuses %+v: %v", c, err)
		}
		rcs = append(rcs, p)
	}
	return sc, rcs
}

// promResolve is what Prometheus' scrape manager makes of groups before
// PopulateLabels' checks: discovered labels, relabeled, a dropped target
// and one without __address__ left out, __meta_* deleted. Sorted, each
// label set once. The three native-histogram labels, which procfleet does
// not set (it has no such settings), are deleted before relabeling: the
// one difference procfleet keeps from Prometheus here.
func promResolve(sc *scrapeConfig, rcs []*prelabel.Config, groups []*targetgroup.Group) []string {
	lb := plabels.NewBuilder(plabels.EmptyLabels())
	var out []string
	for _, g := range groups {
		for _, tl := range g.Targets {
			PopulateDiscoveredLabels(lb, sc, tl, g.Labels)
			lb.Del(convertClassicHistogramsToNHCBLabel, alwaysScrapeClassicHistogramsLabel, scrapeNativeHistogramsLabel)
			if !prelabel.ProcessBuilder(lb, rcs...) || lb.Get(model.AddressLabel) == "" {
				continue
			}
			lb.Range(func(l plabels.Label) {
				if strings.HasPrefix(l.Name, model.MetaLabelPrefix) {
					lb.Del(l.Name)
				}
			})
			out = append(out, promString(lb.Labels()))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// promString and ourString write a label set the same way.
func promString(ls plabels.Labels) string {
	var b strings.Builder
	ls.Range(func(l plabels.Label) { fmt.Fprintf(&b, "%s=%q ", l.Name, l.Value) })
	return b.String()
}

func ourStrings(sets []labels.Labels) []string {
	out := []string{}
	for _, ls := range sets {
		var b strings.Builder
		for _, l := range ls {
			fmt.Fprintf(&b, "%s=%q ", l.Name, l.Value)
		}
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

func parseJob(t *testing.T, doc string) *config.ScrapeConfig {
	t.Helper()
	var jobs config.ScrapeConfigs
	if err := yaml3.Unmarshal([]byte(doc), &jobs); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Validate("scrape_configs"); err != nil {
		t.Fatal(err)
	}
	return &jobs[0]
}

// oracleJob relabels with what a job commonly does with SD labels.
const oracleJob = `
- job_name: oracle
  scrape_interval: 1m30s
  scrape_timeout: 15s
  metrics_path: /probe
  params: {module: [http_2xx, tcp], target: [x]}
  %s
  relabel_configs:
    - source_labels: [__meta_filepath]
      regex: '.*/([^/]+)'
      target_label: file
    - source_labels: [__meta_url]
      target_label: sd
    - regex: __meta_(dns_.+)
      action: labelmap
    - source_labels: [__address__]
      target_label: __param_target
    - source_labels: [env]
      regex: drop-me
      action: drop
    - source_labels: [__address__]
      regex: '(.+):\d+'
      replacement: '${1}:9115'
      target_label: __address__
`

func compareSets(t *testing.T, what string, ours []labels.Labels, prom []string) {
	t.Helper()
	if got := ourStrings(ours); !slices.Equal(got, prom) {
		t.Fatalf("%s:\nprocfleet\n  %s\nPrometheus\n  %s", what, strings.Join(got, "\n  "), strings.Join(prom, "\n  "))
	}
	if len(prom) == 0 {
		t.Fatalf("%s: no targets to compare", what)
	}
}

// sdFiles are file_sd files with what Prometheus' conventions decide:
// group labels over the job's, a target's empty label, __address__ in the
// labels, labels dropped by relabeling, a repeated target.
var sdFiles = map[string]string{
	"a.yaml": `
- targets: [db-1:9187, 'db-2:9187', db-1:9187]
  labels: {env: prod, job: overridden, __scheme__: https, __param_module: icmp, port: 9187}
- targets: [web-1:80]
  labels: {env: drop-me}
- targets: []
  labels: {env: empty}
- targets: ['', 'x']
  labels: {__address__: 'fallback:1', empty: ''}
`,
	"b.json": `[{"targets": ["api-1:8080", "api-2:8080"], "labels": {"env": "staging", "__metrics_path__": "/m", "unicode": "é\u00e9\ud83d\ude00"}},
  {"targets": ["api-3:8080"]}, {"labels": {"no": "targets"}}]`,
	"c.yml": "",
}

// file_sd_configs and http_sd_configs give, through relabeling, what
// Prometheus' own file and http discovery give through its scrape
// manager's labeling, for the same files and the same body.
func TestFileSDAgainstPrometheus(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for name, content := range sdFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	job := parseJob(t, fmt.Sprintf(oracleJob, "file_sd_configs: [{files: [a.yaml, '*.json', c.yml]}]"))
	ours := runOurs(t, job, pfdiscovery.Deps{FileSDDir: dir})

	conf := &file.SDConfig{Files: []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "*.json"), filepath.Join(dir, "c.yml")},
		RefreshInterval: model.Duration(time.Hour)}
	reg := prometheus.NewRegistry()
	d, err := file.NewDiscovery(conf, nil, conf.NewDiscovererMetrics(reg, discovery.NewRefreshMetrics(reg)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan []*targetgroup.Group)
	go d.Run(ctx, ch)
	var groups []*targetgroup.Group
	for range paths { // its first refresh sends each file's groups
		groups = append(groups, <-ch...)
	}
	sc, rcs := promJob(t, job)
	compareSets(t, "file_sd", ours, promResolve(sc, rcs, groups))
}

func TestHTTPSDAgainstPrometheus(t *testing.T) {
	body := strings.ReplaceAll(sdFiles["b.json"], `"labels": {"no": "targets"}`, `"labels": {"no": "targets"}, "targets": []`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	job := parseJob(t, fmt.Sprintf(oracleJob, fmt.Sprintf("http_sd_configs: [{url: %q, refresh_interval: 1h}]", srv.URL+"/sd")))
	ours := runOurs(t, job, pfdiscovery.Deps{})

	conf := &phttp.SDConfig{URL: srv.URL + "/sd", RefreshInterval: model.Duration(time.Hour), HTTPClientConfig: pconfig.DefaultHTTPClientConfig}
	reg := prometheus.NewRegistry()
	d, err := phttp.NewDiscovery(conf, discovery.DiscovererOptions{Metrics: conf.NewDiscovererMetrics(reg, discovery.NewRefreshMetrics(reg))})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := d.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sc, rcs := promJob(t, job)
	compareSets(t, "http_sd", ours, promResolve(sc, rcs, groups))
}

// static_configs, as Prometheus decodes them into target groups.
func TestStaticAgainstPrometheus(t *testing.T) {
	static := `[{targets: [a:1, b:1], labels: {env: prod, job: j2}}, {targets: [c:1, a:1]}, {targets: [d:1], labels: {env: drop-me}}]`
	job := parseJob(t, fmt.Sprintf(oracleJob, "static_configs: "+static))
	ours := runOurs(t, job, pfdiscovery.Deps{})
	var groups []*targetgroup.Group
	if err := yaml.UnmarshalStrict([]byte(static), &groups); err != nil {
		t.Fatal(err)
	}
	sc, rcs := promJob(t, job)
	compareSets(t, "static_configs", ours, promResolve(sc, rcs, groups))
}

// runOurs runs a Job of job until its first set.
func runOurs(t *testing.T, job *config.ScrapeConfig, deps pfdiscovery.Deps) []labels.Labels {
	t.Helper()
	j, err := pfdiscovery.New(job, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case ts := <-j.Updates():
		if errs := j.Errors(); len(errs) > 0 {
			t.Fatalf("errors: %v", errs)
		}
		return ts.Labels
	case <-time.After(20 * time.Second):
		t.Fatalf("no set within 20s: %+v", j.Status())
	}
	return nil
}

// Random groups and random relabeling rules: Resolve gives one of the
// results Prometheus gives. Prometheus sets a target's labels from Go maps,
// so a labelmap that maps two names to one lets either win at random;
// Prometheus is run again until it gives ours (a group has at most 3
// labels and a target 2, so at most 12 orders), and fails the test if it
// never does.
func TestResolveAgainstPrometheus(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	names := []string{"__address__", "job", "env", "a", "__meta_a_x", "__scheme__", "__param_module", "__metrics_path__", "b_x"}
	values := []string{"", "1", "x", "db-1:9100", "a;b", "prod"}
	for i := range 5000 {
		var pgroups []*targetgroup.Group
		var ogroups []pfdiscovery.Group
		for range 1 + r.IntN(3) {
			pg := &targetgroup.Group{Labels: model.LabelSet{}}
			var og pfdiscovery.Group
			var gl []string
			for _, k := range r.Perm(len(names))[:r.IntN(4)] {
				v := values[r.IntN(len(values))]
				pg.Labels[model.LabelName(names[k])] = model.LabelValue(v)
				gl = append(gl, names[k], v)
			}
			og.Labels = labels.FromStrings(gl...)
			for range r.IntN(3) {
				tl := []string{"__address__", values[r.IntN(len(values))]}
				if r.IntN(3) == 0 {
					tl = append(tl, names[1+r.IntN(len(names)-1)], values[r.IntN(len(values))])
				}
				ls := model.LabelSet{}
				for k := 0; k < len(tl); k += 2 {
					ls[model.LabelName(tl[k])] = model.LabelValue(tl[k+1])
				}
				pg.Targets = append(pg.Targets, ls)
				og.Targets = append(og.Targets, labels.FromStrings(tl...))
			}
			pgroups, ogroups = append(pgroups, pg), append(ogroups, og)
		}
		cfgs, _ := randomCase(r, "", "", "")
		job := parseJob(t, "- job_name: rand\n  params: {module: [m1]}\n  static_configs: [{targets: ['x:1']}]\n")
		job.RelabelConfigs = cfgs
		ours, _, err := pfdiscovery.Resolve(job, ogroups)
		sc := &scrapeConfig{JobName: "rand", ScrapeInterval: model.Duration(job.ScrapeInterval), ScrapeTimeout: model.Duration(job.ScrapeTimeout),
			MetricsPath: job.MetricsPath, Scheme: job.Scheme, Params: url.Values(job.Params)}
		var rcs []*prelabel.Config
		var perr error
		for _, c := range cfgs {
			p, e := promConfig(c)
			perr = errorsJoin(perr, e)
			rcs = append(rcs, p)
		}
		if (err != nil) != (perr != nil) {
			t.Fatalf("case %d: rules %s: procfleet %v, Prometheus %v", i, describe(cfgs), err, perr)
		}
		if err != nil {
			continue
		}
		got := strings.Join(ourStrings(ours), "\n")
		var seen []string
		for range 400 { // 12 orders at most: 3 group labels, 2 of a target
			p := strings.Join(promResolve(sc, rcs, pgroups), "\n")
			if p == got {
				seen = nil
				break
			}
			seen = append(seen, p)
		}
		if seen != nil {
			t.Fatalf("case %d: rules %s\ngroups %v\nprocfleet\n%s\nPrometheus\n%s", i, describe(cfgs), pgroups, got, seen[0])
		}
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
