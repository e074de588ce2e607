package discovery

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// ResolveStats counts what resolving groups did with their targets.
type ResolveStats struct {
	// Discovered are the targets of the groups, before relabeling.
	Discovered int
	// Dropped are the targets relabel_configs dropped.
	Dropped int
	// NoAddress are the targets relabeling kept without an __address__,
	// which Prometheus refuses ("no address"); they are left out.
	NoAddress int
}

func (s *ResolveStats) add(o ResolveStats) {
	s.Discovered += o.Discovered
	s.Dropped += o.Dropped
	s.NoAddress += o.NoAddress
}

// Resolve resolves groups with the settings of job as a Job does: each
// target's labels (its own, then its group's, then the job-level labels
// Prometheus adds: job, __scrape_interval__, __scrape_timeout__,
// __metrics_path__, __scheme__ and __param_<name> for the first value of
// each param, each only where the target has no such label), relabeled by
// job's relabel_configs, without its __meta_* labels; a target dropped by
// relabeling or left without __address__ is left out. The result is sorted
// (as Prometheus' labels.Compare orders label sets), each label set once.
func Resolve(job *config.ScrapeConfig, groups []Group) ([]labels.Labels, ResolveStats, error) {
	r, err := newResolver(job)
	if err != nil {
		return nil, ResolveStats{}, err
	}
	var st ResolveStats
	var out []labels.Labels
	for _, g := range groups {
		out = r.group(g, out, &st)
	}
	return sortUnique(out), st, nil
}

// resolver resolves the groups of one job. It is not safe for concurrent
// use: it keeps its buffers across calls.
type resolver struct {
	jobLabels labels.Labels
	rules     *relabel.Rules
	b         *labels.Builder
	own, base labels.Labels // merge buffers
	out       labels.Labels // the builder's result, copied out
	delMeta   func(labels.Label)
	// inOrder: a labelmap rule visits the labels in the order they were
	// set, which decides which of two labels mapped to one name wins; the
	// labels are then set one by one in Prometheus' order (jobOrder)
	// rather than given as a sorted base.
	inOrder  bool
	jobOrder []labels.Label
}

func newResolver(job *config.ScrapeConfig) (*resolver, error) {
	rules, err := relabel.Compile(job.RelabelConfigs)
	if err != nil {
		return nil, fmt.Errorf("job %s: relabel_configs: %w", job.JobName, err)
	}
	r := &resolver{jobLabels: jobLabels(job), rules: rules, b: labels.NewBuilder(nil), jobOrder: jobLabelsInOrder(job)}
	for _, c := range job.RelabelConfigs {
		r.inOrder = r.inOrder || strings.EqualFold(c.Action, config.RelabelLabelMap)
	}
	r.delMeta = func(l labels.Label) {
		if strings.HasPrefix(l.Name, metaPrefix) {
			r.b.Del(l.Name)
		}
	}
	return r, nil
}

// jobLabels returns the labels Prometheus' PopulateDiscoveredLabels adds
// to each target that has none of that name, sorted. Prometheus' three
// native-histogram switches (__convert_classic_histograms_to_nhcb__ and
// the like) are left out: procfleet has no such settings.
func jobLabels(job *config.ScrapeConfig) labels.Labels {
	ls := []labels.Label{
		{Name: labelJob, Value: job.JobName},
		{Name: labelInterval, Value: job.ScrapeInterval.String()},
		{Name: labelTimeout, Value: job.ScrapeTimeout.String()},
		{Name: labelMetricsPath, Value: job.MetricsPath},
		{Name: labelScheme, Value: job.Scheme},
	}
	for k, v := range job.Params {
		if len(v) > 0 {
			ls = append(ls, labels.Label{Name: labelParamPrefix + k, Value: v[0]})
		}
	}
	return labels.FromUnsorted(ls).WithoutEmpty()
}

// jobLabelsInOrder returns the job-level labels in the order Prometheus
// sets them: job, __scrape_interval__, __scrape_timeout__,
// __metrics_path__, __scheme__, then the params (in Go's map order there;
// by name here).
func jobLabelsInOrder(job *config.ScrapeConfig) []labels.Label {
	out := []labels.Label{
		{Name: labelJob, Value: job.JobName},
		{Name: labelInterval, Value: job.ScrapeInterval.String()},
		{Name: labelTimeout, Value: job.ScrapeTimeout.String()},
		{Name: labelMetricsPath, Value: job.MetricsPath},
		{Name: labelScheme, Value: job.Scheme},
	}
	for _, l := range jobLabels(job) {
		if strings.HasPrefix(l.Name, labelParamPrefix) {
			out = append(out, l)
		}
	}
	return out
}

// reset gives the builder target t of a group with labels gl: t's labels,
// gl's that t does not have, the job's that neither has (with a value).
func (r *resolver) reset(t, gl labels.Labels) {
	if !r.inOrder {
		r.own = merge(r.own[:0], t, gl)
		r.base = merge(r.base[:0], r.own, r.jobLabels)
		r.b.Reset(r.base)
		return
	}
	// As Prometheus' PopulateDiscoveredLabels: Set in this order (Go maps
	// give the target's and the group's labels in any order; by name
	// here), an empty value deleting.
	r.b.Reset(nil)
	for _, l := range t {
		r.b.Set(l.Name, l.Value)
	}
	for _, l := range gl {
		if !t.Has(l.Name) {
			r.b.Set(l.Name, l.Value)
		}
	}
	for _, l := range r.jobOrder {
		if r.b.Get(l.Name) == "" {
			r.b.Set(l.Name, l.Value)
		}
	}
}

// group appends the resolved label sets of g's targets to dst.
func (r *resolver) group(g Group, dst []labels.Labels, st *ResolveStats) []labels.Labels {
	for _, t := range g.Targets {
		st.Discovered++
		r.reset(t, g.Labels)
		if !r.rules.Process(r.b) {
			st.Dropped++
			continue
		}
		if r.b.Get(labelAddress) == "" {
			st.NoAddress++
			continue
		}
		r.b.Range(r.delMeta)
		r.out = r.b.Labels(r.out)
		dst = append(dst, slices.Clone(r.out))
	}
	return dst
}

// merge appends to dst the union of the sorted label sets a and b, a's
// label winning over b's of the same name, without the labels of empty
// value: as Prometheus' Builder makes of Set(a's labels) and then Set(b's
// labels that a does not have). The result is sorted.
func merge(dst, a, b labels.Labels) labels.Labels {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var l labels.Label
		switch {
		case j == len(b) || i < len(a) && a[i].Name < b[j].Name:
			l = a[i]
			i++
		case i == len(a) || b[j].Name < a[i].Name:
			l = b[j]
			j++
		default: // the same name: a's wins, even empty
			l = a[i]
			i, j = i+1, j+1
		}
		if l.Value != "" {
			dst = append(dst, l)
		}
	}
	return dst
}

// compareLabels orders label sets as Prometheus' labels.Compare does.
func compareLabels(a, b labels.Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// sortUnique sorts ls and removes repeated label sets, in place.
func sortUnique(ls []labels.Labels) []labels.Labels {
	slices.SortFunc(ls, compareLabels)
	return slices.CompactFunc(ls, labels.Labels.Equal)
}
