package promoracle

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	pconfig "github.com/prometheus/prometheus/config"
	plabels "github.com/prometheus/prometheus/model/labels"
	prelabel "github.com/prometheus/prometheus/model/relabel"
	pscrape "github.com/prometheus/prometheus/scrape"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// Pools of discovered target labels: the reserved labels PopulateLabels
// reads, with good and bad values.
var (
	targetNames = []string{"__address__", "__address__", "__scheme__", "__metrics_path__", "__param_module", "__param_x",
		"__scrape_interval__", "__scrape_timeout__", "instance", "job", "zone", "__meta_a_x", "a", "b"}
	targetValues = map[string][]string{
		"__address__":         {"h:9100", "10.0.0.1:80", "[::1]:9100", "h", "h:9100", "10.0.0.1:80", "h:1/x", "", "\xff"},
		"__scheme__":          {"http", "https", "http", "https", ""},
		"__metrics_path__":    {"/metrics", "/m", "", "/a b"},
		"__scrape_interval__": {"30s", "1m", "30s", "1m", "2m", "0s", "1.5s", "x"},
		"__scrape_timeout__":  {"10s", "30s", "10s", "5s", "0s", "90s", "y"},
	}
	anyValues = []string{"", "1", "x", "db-1:9100", "a;b", "ÄbC", "\xff\xfe"}
)

// populateCase draws a job and a discovered target's labels.
func populateCase(r *rand.Rand) (*config.ScrapeConfig, []config.RelabelConfig, []string) {
	job := config.DefaultScrapeConfig()
	job.JobName = "j"
	job.ScrapeInterval = config.PromDuration([]time.Duration{time.Minute, 30 * time.Second, 10 * time.Second}[r.IntN(3)])
	job.ScrapeTimeout = min(config.PromDuration(10*time.Second), job.ScrapeInterval)
	if r.IntN(3) == 0 {
		job.Scheme = "https"
	}
	if r.IntN(3) == 0 {
		job.MetricsPath = "/probe"
	}
	if r.IntN(3) == 0 {
		job.Params = map[string][]string{"module": {"m1", "m2"}, "target": {"t"}}
	}
	input := []string{"__address__", "h:9100"} // replaced when drawn again
	for _, i := range r.Perm(len(targetNames))[:1+r.IntN(6)] {
		name := targetNames[i]
		values := targetValues[name]
		if values == nil {
			values = anyValues
		}
		input = append(input, name, values[r.IntN(len(values))])
	}
	var rules []config.RelabelConfig
	if r.IntN(2) == 0 {
		rules, _ = randomCase(r, "", "", "")
	}
	return &job, rules, ourPairs(labels.FromStrings(input...))
}

// promScrapeConfig converts job to Prometheus' type, with the rules.
func promScrapeConfig(job *config.ScrapeConfig, rules []*prelabel.Config) *pconfig.ScrapeConfig {
	return &pconfig.ScrapeConfig{
		JobName:        job.JobName,
		ScrapeInterval: model.Duration(job.ScrapeInterval),
		ScrapeTimeout:  model.Duration(job.ScrapeTimeout),
		MetricsPath:    job.MetricsPath,
		Scheme:         job.Scheme,
		Params:         url.Values(job.Params),
		RelabelConfigs: rules,
	}
}

// targetResult is what one implementation made of a discovered target.
type targetResult struct {
	dropped bool
	err     bool
	labels  string // public labels
	url     string
	times   string // interval and timeout
}

// TestTargetFromLabelsAgainstPrometheus draws jobs, discovered targets
// and relabel_configs, and compares Prometheus' PopulateLabels (and its
// target's URL, interval and timeout) with DiscoveredLabels, prom/relabel
// and TargetFromLabels.
func TestTargetFromLabelsAgainstPrometheus(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(17, 4))
	var dropped, failed, made, skipped, orderDependent int
	for range n {
		job, rules, input := populateCase(r)
		var prules []*prelabel.Config
		invalid := false
		for _, c := range rules {
			p, err := promConfig(c)
			if err != nil {
				invalid = true
				break
			}
			prules = append(prules, p)
		}
		ours, err := relabel.Compile(rules)
		if invalid || err != nil {
			skipped++ // refused rules are the relabel oracle's business
			continue
		}
		if labelmapCollides(job, rules, input) {
			// labelmap maps two labels to one name: the last visited wins,
			// and Prometheus visits a target's labels in map order.
			orderDependent++
			continue
		}
		got := ourTarget(job, ours, input)
		prom := promTarget(job, prules, input)
		if prom != got {
			t.Fatalf("job %+v, rules %s, target %q:\nPrometheus %+v\nprocfleet  %+v", *job, describe(rules), input, prom, got)
		}
		switch {
		case got.dropped:
			dropped++
		case got.err:
			failed++
		default:
			made++
		}
	}
	t.Logf("%d cases: %d skipped (rules refused), %d skipped (order-dependent), %d dropped, %d refused, %d targets",
		n, skipped, orderDependent, dropped, failed, made)
	if made < n/10 || failed < n/20 || dropped < n/50 {
		t.Fatalf("the draw is lopsided: %d targets, %d refused, %d dropped", made, failed, dropped)
	}
}

func promTarget(job *config.ScrapeConfig, rules []*prelabel.Config, input []string) targetResult {
	cfg := promScrapeConfig(job, rules)
	ls := model.LabelSet{}
	for i := 0; i < len(input); i += 2 {
		ls[model.LabelName(input[i])] = model.LabelValue(input[i+1])
	}
	res, err := pscrape.PopulateLabels(plabels.NewBuilder(plabels.EmptyLabels()), cfg, ls, nil)
	switch {
	case err != nil:
		return targetResult{err: true}
	case res.IsEmpty():
		return targetResult{dropped: true}
	}
	tg := pscrape.NewTarget(res, cfg, ls, nil)
	if s := tg.URL().Scheme; s != "http" && s != "https" {
		return targetResult{err: true} // procfleet refuses other schemes when it makes the target; Prometheus when it scrapes
	}
	var pub []string
	badName := false
	res.Range(func(l plabels.Label) {
		if !strings.HasPrefix(l.Name, "__") {
			pub = append(pub, l.Name, l.Value)
			badName = badName || !labels.IsValidName(l.Name)
		}
	})
	if badName {
		// A label name labelmap made empty or invalid: Prometheus takes
		// the target and fails each of its scrapes; procfleet refuses it.
		return targetResult{err: true}
	}
	interval, _ := model.ParseDuration(res.Get(model.ScrapeIntervalLabel))
	timeout, _ := model.ParseDuration(res.Get(model.ScrapeTimeoutLabel))
	return targetResult{labels: fmt.Sprint(pub), url: tg.URL().String(), times: fmt.Sprint(time.Duration(interval), time.Duration(timeout))}
}

// labelmapCollides reports whether a labelmap rule, applied in turn, maps
// two labels of different values to one name.
func labelmapCollides(job *config.ScrapeConfig, rules []config.RelabelConfig, input []string) bool {
	ls := scrape.DiscoveredLabels(job, labels.FromStrings(input...))
	for _, c := range rules {
		if strings.EqualFold(c.Action, config.RelabelLabelMap) {
			re, err := prelabel.NewRegexp(c.Regex)
			if err != nil {
				return true
			}
			mapped := map[string]string{}
			for _, l := range ls {
				if !re.MatchString(l.Name) {
					continue
				}
				n := re.ReplaceAllString(l.Name, c.Replacement)
				if v, ok := mapped[n]; ok && v != l.Value {
					return true
				}
				mapped[n] = l.Value
			}
		}
		r, err := relabel.Compile([]config.RelabelConfig{c})
		if err != nil {
			return true
		}
		out, keep := r.Apply(labels.NewBuilder(nil), ls, nil)
		if !keep {
			return false
		}
		ls = out
	}
	return false
}

// ourTarget makes the target with procfleet's code.
func ourTarget(job *config.ScrapeConfig, rules *relabel.Rules, input []string) targetResult {
	ls := scrape.DiscoveredLabels(job, labels.FromStrings(input...))
	b := labels.NewBuilder(ls)
	if !rules.Process(b) {
		return targetResult{dropped: true}
	}
	tg, err := scrape.TargetFromLabels(job, b.Labels(nil))
	if err != nil {
		return targetResult{err: true}
	}
	var pub []string
	for _, l := range tg.Labels {
		pub = append(pub, l.Name, l.Value)
	}
	return targetResult{labels: fmt.Sprint(pub), url: tg.URL().String(), times: fmt.Sprint(tg.Interval, tg.Timeout)}
}
