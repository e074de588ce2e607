package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Scrape defaults, as Prometheus' (there is no global block: each job
// sets its own interval; a YAML anchor shares one among jobs).
const (
	DefaultScrapeInterval = time.Minute
	DefaultScrapeTimeout  = 10 * time.Second
	DefaultMetricsPath    = "/metrics"
)

// Placements of a job (ScrapeConfig.Placement).
const (
	// PlacementCluster: discovery runs once in the cluster and each target
	// is scraped by one member.
	PlacementCluster = "cluster"
	// PlacementLocal: every selected member discovers and scrapes the
	// job's targets on its own; nothing is published to etcd.
	PlacementLocal = "local"
)

// ScrapeConfigs are the jobs of the cluster document's scrape_configs. Its
// decoding is as strict as the rest of the document, with the key path and
// line of an unknown or host-local key.
type ScrapeConfigs []ScrapeConfig

// ScrapeConfig is one scrape job: a documented subset of Prometheus'
// scrape_config with the same keys, defaults and semantics, and procfleet's
// placement and members. Every key is listed with its default in
// deploy/cluster.example.yaml. A ScrapeConfig is a plain value: safe to
// read from several goroutines, not to change while they read it.
type ScrapeConfig struct {
	// JobName is the job label of the job's series and its key in etcd:
	// 1 to 128 of A-Z, a-z, 0-9, '_', '-', '.' and ':', unique. Required.
	JobName string `yaml:"job_name"`
	// ScrapeInterval is the time between two scrapes of a target. Default
	// 1m ("0" too means the default).
	ScrapeInterval PromDuration `yaml:"scrape_interval"`
	// ScrapeTimeout bounds one scrape; at most ScrapeInterval. Default 10s,
	// or ScrapeInterval when that is shorter.
	ScrapeTimeout PromDuration `yaml:"scrape_timeout"`
	// MetricsPath is the HTTP path scraped. Default /metrics.
	MetricsPath string `yaml:"metrics_path"`
	// Scheme is http or https. Default http.
	Scheme string `yaml:"scheme"`
	// Params are URL query parameters of the scrape. Default none.
	Params map[string][]string `yaml:"params,omitempty"`
	// HonorLabels: on a clash of a scraped label with a target label, keep
	// the scraped one (true) or the target's, the scraped one renamed
	// exported_NAME (false). Default false.
	HonorLabels bool `yaml:"honor_labels"`
	// HonorTimestamps: keep the timestamps the target exposes (true) or
	// stamp samples with the scrape's time (false). Default true.
	HonorTimestamps bool `yaml:"honor_timestamps"`
	// ScrapeAuth names the host credentials of basic_auth, authorization
	// and tls_config.
	ScrapeAuth `yaml:",inline"`
	// StaticConfigs are targets written out. Default none.
	StaticConfigs []StaticConfig `yaml:"static_configs,omitempty"`
	// FileSDConfigs read targets from files in the host's file_sd
	// directory. Default none.
	FileSDConfigs []FileSDConfig `yaml:"file_sd_configs,omitempty"`
	// DNSSDConfigs resolve targets from DNS. Default none.
	DNSSDConfigs []DNSSDConfig `yaml:"dns_sd_configs,omitempty"`
	// HTTPSDConfigs fetch targets from an HTTP endpoint. Default none.
	HTTPSDConfigs []HTTPSDConfig `yaml:"http_sd_configs,omitempty"`
	// RelabelConfigs relabel each discovered target. Default none.
	RelabelConfigs []RelabelConfig `yaml:"relabel_configs,omitempty"`
	// MetricRelabelConfigs relabel each scraped sample. Default none.
	MetricRelabelConfigs []RelabelConfig `yaml:"metric_relabel_configs,omitempty"`
	// SampleLimit fails a scrape (up 0) with more samples than this after
	// metric relabeling. 0: no limit. Default 0.
	SampleLimit int `yaml:"sample_limit,omitempty"`
	// LabelLimit fails a scrape with a sample of more labels than this.
	// 0: no limit. Default 0.
	LabelLimit int `yaml:"label_limit,omitempty"`
	// BodySizeLimit fails a scrape whose uncompressed body is larger.
	// 0: no limit. Default 0.
	BodySizeLimit PromByteSize `yaml:"body_size_limit,omitempty"`
	// Placement is cluster (one member scrapes each target) or local (each
	// selected member scrapes the targets on its own). Default cluster.
	Placement string `yaml:"placement"`
	// Members selects the members that take part: those registered with
	// every label given, with the same value. Default: every member.
	Members map[string]string `yaml:"members,omitempty"`
}

// StaticConfig is a group of targets written out, with labels for them.
type StaticConfig struct {
	// Targets are host:port addresses. Required.
	Targets []string `yaml:"targets"`
	// Labels are set on every target of the group. Default none.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// DefaultScrapeConfig returns a job with every default; it has no name,
// so it does not validate until it gets one.
func DefaultScrapeConfig() ScrapeConfig {
	return ScrapeConfig{
		ScrapeInterval:  PromDuration(DefaultScrapeInterval),
		ScrapeTimeout:   PromDuration(DefaultScrapeTimeout),
		MetricsPath:     DefaultMetricsPath,
		Scheme:          "http",
		HonorTimestamps: true,
		Placement:       PlacementCluster,
	}
}

// UnmarshalYAML implements yaml.Unmarshaler: it checks every key of every
// job (unknown keys and host-local keys are refused with their path and
// line) and decodes each job over the defaults.
func (s *ScrapeConfigs) UnmarshalYAML(n *yaml.Node) error {
	if err := checkScrapeKeys(n, "scrape_configs"); err != nil {
		return err
	}
	var out []ScrapeConfig
	if err := n.Decode(&out); err != nil {
		return fmt.Errorf("scrape_configs: %w", rewordDecodeError(err, clusterRef))
	}
	*s = out
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: the keys not written keep
// their defaults; the timeout's default is capped at the interval.
func (c *ScrapeConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain ScrapeConfig
	d := plain(DefaultScrapeConfig())
	d.ScrapeInterval, d.ScrapeTimeout = 0, 0
	if err := n.Decode(&d); err != nil {
		return err
	}
	*c = ScrapeConfig(d)
	c.fillDurations()
	return nil
}

// fillDurations sets the defaults of an interval and a timeout left 0, as
// Prometheus does with its global defaults.
func (c *ScrapeConfig) fillDurations() {
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = PromDuration(DefaultScrapeInterval)
	}
	if c.ScrapeTimeout == 0 {
		c.ScrapeTimeout = min(PromDuration(DefaultScrapeTimeout), c.ScrapeInterval)
	}
}

// Validate checks every job and that job names are unique; key, such as
// "scrape_configs", prefixes errors.
func (s ScrapeConfigs) Validate(key string) error {
	names := make(map[string]int, len(s))
	for i, c := range s {
		k := fmt.Sprintf("%s[%d]", key, i)
		if err := c.Validate(k); err != nil {
			return err
		}
		if j, dup := names[c.JobName]; dup {
			return fmt.Errorf("%s.job_name: %q is also the job_name of %s[%d]; want unique names", k, c.JobName, key, j)
		}
		names[c.JobName] = i
	}
	return nil
}

// Job returns the job called name.
func (s ScrapeConfigs) Job(name string) (ScrapeConfig, bool) {
	for _, c := range s {
		if c.JobName == name {
			return c, true
		}
	}
	return ScrapeConfig{}, false
}

var jobName = lazyRegexp(`^[A-Za-z0-9_.:-]{1,128}$`)

// Validate checks c; key, such as "scrape_configs[0]", prefixes errors.
func (c ScrapeConfig) Validate(key string) error {
	checks := []func(string) error{
		c.validateHTTP, c.ScrapeAuth.validate, c.validateTargets,
		c.validateRelabel, c.validateLimits, c.validatePlacement,
	}
	for _, check := range checks {
		if err := check(key); err != nil {
			return err
		}
	}
	return nil
}

func (c ScrapeConfig) validateHTTP(key string) error {
	if !jobName().MatchString(c.JobName) {
		return fmt.Errorf("%s.job_name: %q is not accepted; want 1 to 128 of A-Z, a-z, 0-9, '_', '-', '.' and ':', such as node", key, c.JobName)
	}
	if c.ScrapeInterval <= 0 {
		return fmt.Errorf("%s.scrape_interval: %s is not accepted; want a positive duration such as 30s", key, c.ScrapeInterval)
	}
	if c.ScrapeTimeout <= 0 || c.ScrapeTimeout > c.ScrapeInterval {
		return fmt.Errorf("%s.scrape_timeout: %s is not accepted; want a positive duration at most scrape_interval (%s)", key, c.ScrapeTimeout, c.ScrapeInterval)
	}
	if !strings.HasPrefix(c.MetricsPath, "/") {
		return fmt.Errorf("%s.metrics_path: %q is not accepted; want an absolute path such as /metrics", key, c.MetricsPath)
	}
	if c.Scheme != "http" && c.Scheme != "https" {
		return fmt.Errorf("%s.scheme: %q is not accepted; want http or https", key, c.Scheme)
	}
	for _, p := range sortedKeys(c.Params) {
		if p == "" {
			return fmt.Errorf("%s.params: an empty parameter name is not accepted", key)
		}
	}
	return nil
}

func (c ScrapeConfig) validateTargets(key string) error {
	for i, sc := range c.StaticConfigs {
		k := fmt.Sprintf("%s.static_configs[%d]", key, i)
		if len(sc.Targets) == 0 {
			return fmt.Errorf("%s.targets: empty; want host:port addresses such as 127.0.0.1:9100", k)
		}
		for j, t := range sc.Targets {
			if err := ValidateTarget(t); err != nil {
				return fmt.Errorf("%s.targets[%d]: %w", k, j, err)
			}
		}
		if err := validateLabelSet(k+".labels", sc.Labels); err != nil {
			return err
		}
	}
	for i, f := range c.FileSDConfigs {
		if err := f.Validate(fmt.Sprintf("%s.file_sd_configs[%d]", key, i)); err != nil {
			return err
		}
	}
	for i, d := range c.DNSSDConfigs {
		if err := d.Validate(fmt.Sprintf("%s.dns_sd_configs[%d]", key, i)); err != nil {
			return err
		}
	}
	for i, h := range c.HTTPSDConfigs {
		if err := h.Validate(fmt.Sprintf("%s.http_sd_configs[%d]", key, i)); err != nil {
			return err
		}
	}
	return nil
}

func (c ScrapeConfig) validateRelabel(key string) error {
	for i, r := range c.RelabelConfigs {
		if err := r.Validate(fmt.Sprintf("%s.relabel_configs[%d]", key, i)); err != nil {
			return err
		}
	}
	for i, r := range c.MetricRelabelConfigs {
		if err := r.Validate(fmt.Sprintf("%s.metric_relabel_configs[%d]", key, i)); err != nil {
			return err
		}
	}
	return nil
}

func (c ScrapeConfig) validateLimits(key string) error {
	if c.SampleLimit < 0 {
		return fmt.Errorf("%s.sample_limit: %d is not accepted; want 0 (no limit) or more", key, c.SampleLimit)
	}
	if c.LabelLimit < 0 {
		return fmt.Errorf("%s.label_limit: %d is not accepted; want 0 (no limit) or more", key, c.LabelLimit)
	}
	if c.BodySizeLimit < 0 {
		return fmt.Errorf("%s.body_size_limit: %s is not accepted; want 0 (no limit) or a size such as 10MB", key, c.BodySizeLimit)
	}
	return nil
}

func (c ScrapeConfig) validatePlacement(key string) error {
	if c.Placement != PlacementCluster && c.Placement != PlacementLocal {
		return fmt.Errorf("%s.placement: %q is not accepted; want %s (one member scrapes each target) or %s (every selected member scrapes on its own host)",
			key, c.Placement, PlacementCluster, PlacementLocal)
	}
	for _, k := range sortedKeys(c.Members) {
		if err := ValidateLabel(k, c.Members[k]); err != nil {
			return fmt.Errorf("%s.members: %w", key, err)
		}
	}
	return nil
}

// SelectsMember reports whether a member registered with labels takes part
// in the job: it has every label of Members with the same value. Empty
// Members selects every member.
func (c ScrapeConfig) SelectsMember(labels map[string]string) bool {
	for k, v := range c.Members {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ValidateTarget checks a target address: host:port, the host a name or
// an IP address (IPv6 in brackets), the port 1 to 65535.
func ValidateTarget(t string) error {
	host, port, err := net.SplitHostPort(t)
	p, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || p < 1 || p > 65535 || strings.ContainsAny(host, "/ ") || !utf8.ValidString(host) {
		return fmt.Errorf("%q is not accepted; want host:port such as 127.0.0.1:9100, db-1.example.com:9187 or [::1]:9100", t)
	}
	return nil
}

// validateLabelSet checks the labels of a target group: legacy names and
// UTF-8 values.
func validateLabelSet(key string, ls map[string]string) error {
	for _, name := range sortedKeys(ls) {
		if !validLabelName(name) {
			return fmt.Errorf("%s: %q is not a label name; want [a-zA-Z_][a-zA-Z0-9_]*", key, name)
		}
		if !utf8.ValidString(ls[name]) {
			return fmt.Errorf("%s.%s: the value is not valid UTF-8", key, name)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
