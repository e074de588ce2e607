package discovery

import (
	"fmt"
	"slices"

	"github.com/procfleet/procfleet/prom/labels"
)

// Label names discovery sets, as Prometheus names them.
const (
	labelAddress     = "__address__"
	labelJob         = "job"
	labelScheme      = "__scheme__"
	labelMetricsPath = "__metrics_path__"
	labelInterval    = "__scrape_interval__"
	labelTimeout     = "__scrape_timeout__"
	labelParamPrefix = "__param_"
	metaPrefix       = "__meta_"

	labelFilepath     = "__meta_filepath"
	labelURL          = "__meta_url"
	labelDNSName      = "__meta_dns_name"
	labelDNSSRVTarget = "__meta_dns_srv_record_target"
	labelDNSSRVPort   = "__meta_dns_srv_record_port"
)

// Group is a target group, as Prometheus' targetgroup.Group: targets and
// the labels they share. A Group is a plain value: safe to read from
// several goroutines, not to change while they read it.
type Group struct {
	// Targets are the targets' own label sets, each sorted and holding
	// __address__ and the SD meta labels of that target. A label of empty
	// value is kept: as in Prometheus, it hides the group's label of the
	// same name (and then counts as absent).
	Targets []labels.Labels
	// Labels are the group's labels, sorted, SD meta labels of the group
	// (__meta_filepath, __meta_url) included.
	Labels labels.Labels
}

// Equal reports whether g and o hold the same targets and labels.
func (g Group) Equal(o Group) bool {
	return g.Labels.Equal(o.Labels) && slices.EqualFunc(g.Targets, o.Targets, labels.Labels.Equal)
}

// groupsEqual reports whether a and b hold the same groups in the same
// order.
func groupsEqual(a, b []Group) bool { return slices.EqualFunc(a, b, Group.Equal) }

// countTargets returns the targets of gs.
func countTargets(gs []Group) int {
	n := 0
	for _, g := range gs {
		n += len(g.Targets)
	}
	return n
}

// addressGroup returns a group of targets that have only an __address__,
// sharing one array, with labels lbls.
func addressGroup(addrs []string, lbls labels.Labels) Group {
	backing := make([]labels.Label, len(addrs))
	g := Group{Targets: make([]labels.Labels, len(addrs)), Labels: lbls}
	for i, a := range addrs {
		backing[i] = labels.Label{Name: labelAddress, Value: a}
		g.Targets[i] = backing[i : i+1 : i+1]
	}
	return g
}

// budget counts what the groups of one job or source hold against Config's
// bounds. The zero value is not usable: make one with newBudget.
type budget struct {
	maxTargets, maxLabels, maxTargetLabels int
	targets, labels                        int
}

func newBudget(c Config) *budget {
	return &budget{maxTargets: c.MaxTargets, maxLabels: c.MaxLabels, maxTargetLabels: c.MaxTargetLabels}
}

// addTargets counts n more targets; the error says the bound was crossed.
func (b *budget) addTargets(n int) error {
	if b.targets+n > b.maxTargets {
		return fmt.Errorf("more than %d targets (the limit of a job)", b.maxTargets)
	}
	b.targets += n
	return nil
}

// checkGroupLabels checks that a group with n labels stays within the
// labels a target may have.
func (b *budget) checkGroupLabels(n int) error {
	if n > b.maxTargetLabels {
		return fmt.Errorf("a group of more than %d labels (the limit of a target)", b.maxTargetLabels)
	}
	return nil
}

// addGroup counts the label pairs of g's targets (their own labels and the
// group's), after its targets were counted with addTargets.
func (b *budget) addGroup(g Group) error {
	for _, t := range g.Targets {
		n := len(t) + len(g.Labels)
		if n > b.maxTargetLabels {
			return fmt.Errorf("a target of more than %d labels (the limit of a target)", b.maxTargetLabels)
		}
		if b.labels += n; b.labels > b.maxLabels {
			return fmt.Errorf("more than %d label pairs over the targets (the limit of a job)", b.maxLabels)
		}
	}
	return nil
}

// add counts the targets and labels of gs.
func (b *budget) add(gs []Group) error {
	for _, g := range gs {
		if err := b.addTargets(len(g.Targets)); err != nil {
			return err
		}
		if err := b.addGroup(g); err != nil {
			return err
		}
	}
	return nil
}
