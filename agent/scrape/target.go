package scrape

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// Reserved labels of a discovered target, as Prometheus names them.
const (
	AddressLabel        = "__address__"
	SchemeLabel         = "__scheme__"
	MetricsPathLabel    = "__metrics_path__"
	ScrapeIntervalLabel = "__scrape_interval__"
	ScrapeTimeoutLabel  = "__scrape_timeout__"
	ParamLabelPrefix    = "__param_"
	MetaLabelPrefix     = "__meta_"
	// Prometheus' native histogram settings, which procfleet sets to
	// false, as Prometheus' defaults, so that rules over every label
	// (labelmap, hashmod of joined names) see what they see in Prometheus.
	convertNHCBLabel      = "__convert_classic_histograms_to_nhcb__"
	alwaysClassicLabel    = "__always_scrape_classic_histograms__"
	nativeHistogramsLabel = "__scrape_native_histograms__"
	JobLabel              = "job"
	InstanceLabel         = "instance"
)

// Target is one target to scrape: its job's settings, where to scrape it
// and the labels its series get. A Target is a plain value: safe to read
// from several goroutines, not to change while they read it (Job and
// Params are shared, never written).
type Target struct {
	// Job holds the job's settings: honor_labels, honor_timestamps,
	// metric_relabel_configs, limits and credentials. Its interval and
	// timeout are overridden by Interval and Timeout.
	Job *config.ScrapeConfig
	// Scheme ("http" or "https"), Address (host:port), Path and Params
	// make the URL scraped, after relabel_configs.
	Scheme, Address, Path string
	Params                url.Values
	// Interval and Timeout are the target's own, after relabel_configs.
	Interval, Timeout time.Duration
	// Labels are the target's public labels (job, instance and the
	// others, no "__" names), sorted: every series scraped carries them.
	Labels labels.Labels
}

// URL returns the URL the target is scraped at.
func (t Target) URL() *url.URL {
	return &url.URL{Scheme: t.Scheme, Host: t.Address, Path: t.Path, RawQuery: t.Params.Encode()}
}

// Key identifies the target: its job, its URL and its labels, as
// Prometheus tells targets apart. Two targets with the same Key are the
// same target, whatever else changed in their job's settings.
func (t Target) Key() string {
	var b strings.Builder
	if t.Job != nil {
		b.WriteString(t.Job.JobName)
	}
	b.WriteByte(0)
	b.WriteString(t.URL().String())
	b.WriteByte(0)
	for _, l := range t.Labels {
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(l.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// Phase returns where, within each interval, the target of key is
// scraped: FNV-1a of the key modulo the interval, in whole milliseconds.
// Scrapes run at the wall-clock times t with t mod interval == Phase, the
// same on every member, so that two members scraping one target during a
// handover stamp the same timestamps (which VictoriaMetrics' dedup then
// collapses), and the targets of a job are spread over the interval.
func Phase(targetKey string, interval time.Duration) time.Duration {
	ms := interval.Milliseconds()
	if ms <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(targetKey))
	return time.Duration(h.Sum64()%uint64(ms)) * time.Millisecond
}

// DiscoveredLabels returns the labels of a discovered target before
// relabel_configs, as Prometheus' PopulateDiscoveredLabels makes them:
// the target's labels, with job, __scrape_interval__,
// __scrape_timeout__, __metrics_path__, __scheme__, Prometheus' three
// native histogram settings (false: procfleet takes classic histograms
// only) and one __param_<name> per parameter of the job (its first value)
// added where not set.
// Discovery applies the job's relabel_configs to the result, then
// TargetFromLabels makes the Target.
func DiscoveredLabels(job *config.ScrapeConfig, target labels.Labels) labels.Labels {
	b := labels.NewBuilder(target)
	set := func(name, value string) {
		if b.Get(name) == "" {
			b.Set(name, value)
		}
	}
	set(JobLabel, job.JobName)
	set(ScrapeIntervalLabel, job.ScrapeInterval.String())
	set(ScrapeTimeoutLabel, job.ScrapeTimeout.String())
	set(MetricsPathLabel, job.MetricsPath)
	set(SchemeLabel, job.Scheme)
	set(convertNHCBLabel, "false")
	set(alwaysClassicLabel, "false")
	set(nativeHistogramsLabel, "false")
	for name, vs := range job.Params {
		if len(vs) > 0 {
			set(ParamLabelPrefix+name, vs[0])
		}
	}
	return b.Labels(nil)
}

// TargetFromLabels makes the Target of job for lset, a discovered target's
// labels after relabel_configs (see DiscoveredLabels), with Prometheus'
// semantics (PopulateLabels after relabeling, and Target.URL): the
// address, which must not hold a '/', from __address__; the interval and
// timeout from __scrape_interval__ and __scrape_timeout__ (each positive,
// the timeout at most the interval); scheme, path and the parameters from
// __scheme__, __metrics_path__, the job's params and __param_<name>
// (which replaces the first value of the job's); instance defaults to the
// address; the labels named "__..." are dropped. As in Prometheus v3, no
// port is added to an address without one.
func TargetFromLabels(job *config.ScrapeConfig, lset labels.Labels) (Target, error) {
	if job == nil {
		return Target{}, errors.New("no job")
	}
	addr := lset.Get(AddressLabel)
	if addr == "" {
		return Target{}, errors.New("no address")
	}
	if strings.Contains(addr, "/") {
		return Target{}, fmt.Errorf("%q is not a valid hostname", addr)
	}
	t := Target{Job: job, Address: addr, Scheme: lset.Get(SchemeLabel), Path: lset.Get(MetricsPathLabel)}
	var err error
	if t.Interval, err = durationLabel(lset, ScrapeIntervalLabel, "scrape interval"); err != nil {
		return Target{}, err
	}
	if t.Timeout, err = durationLabel(lset, ScrapeTimeoutLabel, "scrape timeout"); err != nil {
		return Target{}, err
	}
	if t.Timeout > t.Interval {
		return Target{}, fmt.Errorf("scrape timeout cannot be greater than scrape interval (%q > %q)",
			lset.Get(ScrapeTimeoutLabel), lset.Get(ScrapeIntervalLabel))
	}
	for _, name := range []string{convertNHCBLabel, alwaysClassicLabel, nativeHistogramsLabel} {
		if v := lset.Get(name); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				return Target{}, fmt.Errorf("error parsing %s: %w", name, err)
			}
		}
	}
	if t.Scheme != "http" && t.Scheme != "https" {
		return Target{}, fmt.Errorf("scheme %q is not accepted; want http or https", t.Scheme)
	}
	t.Params = targetParams(job.Params, lset)
	b := labels.NewBuilder(nil)
	for _, l := range lset {
		if l.Value == "" || strings.HasPrefix(l.Name, MetaLabelPrefix) {
			continue
		}
		if !utf8.ValidString(l.Value) {
			return Target{}, fmt.Errorf("invalid label value for %q: %q", l.Name, l.Value)
		}
		if strings.HasPrefix(l.Name, "__") {
			continue
		}
		if !labels.IsValidName(l.Name) {
			return Target{}, fmt.Errorf("invalid label name %q", l.Name)
		}
		b.Set(l.Name, l.Value)
	}
	if b.Get(InstanceLabel) == "" {
		b.Set(InstanceLabel, addr)
	}
	t.Labels = b.Labels(nil)
	return t, nil
}

// durationLabel parses the duration of label name, which must be
// positive; what names it in errors.
func durationLabel(lset labels.Labels, name, what string) (time.Duration, error) {
	v := lset.Get(name)
	d, err := config.ParsePromDuration(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("error parsing %s: %w", what, err)
	case d == 0:
		return 0, fmt.Errorf("%s cannot be 0", what)
	}
	return d, nil
}

// targetParams returns the job's params, each __param_<name> label
// replacing the first value of name, as Prometheus' Target.URL does.
func targetParams(job map[string][]string, lset labels.Labels) url.Values {
	params := url.Values{}
	for k, vs := range job {
		params[k] = slices.Clone(vs)
	}
	for _, l := range lset {
		name, ok := strings.CutPrefix(l.Name, ParamLabelPrefix)
		if !ok {
			continue
		}
		if len(params[name]) > 0 {
			params[name][0] = l.Value
		} else {
			params[name] = []string{l.Value}
		}
	}
	return params
}

// sameSettings reports whether two jobs scrape a target alike: their
// discovery, relabel_configs and placement may differ.
func sameSettings(a, b *config.ScrapeConfig) bool {
	if a == b {
		return true
	}
	return a.JobName == b.JobName && a.HonorLabels == b.HonorLabels && a.HonorTimestamps == b.HonorTimestamps &&
		a.SampleLimit == b.SampleLimit && a.LabelLimit == b.LabelLimit && a.BodySizeLimit == b.BodySizeLimit &&
		sameAuth(a.ScrapeAuth, b.ScrapeAuth) && slices.EqualFunc(a.MetricRelabelConfigs, b.MetricRelabelConfigs, sameRule)
}

func sameAuth(a, b config.ScrapeAuth) bool {
	ref := func(x, y any) bool { return fmt.Sprint(x) == fmt.Sprint(y) }
	return ref(deref(a.BasicAuth), deref(b.BasicAuth)) && ref(deref(a.Authorization), deref(b.Authorization)) &&
		ref(deref(a.TLSConfig), deref(b.TLSConfig))
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func sameRule(a, b config.RelabelConfig) bool {
	return slices.Equal(a.SourceLabels, b.SourceLabels) && a.Separator == b.Separator && a.Regex == b.Regex &&
		a.Modulus == b.Modulus && a.TargetLabel == b.TargetLabel && a.Replacement == b.Replacement && a.Action == b.Action
}
