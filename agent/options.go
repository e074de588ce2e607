package agent

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Option changes a default of New.
type Option func(*options)

type options struct {
	sets        map[string]*metrics.Set // extra metric sets by name
	cluster     *ClusterInfo            // for the index page; nil: standalone
	clusterPage string                  // WithClusterPage's URL, over cluster.Page
}

// WithMetricsSet adds set, named name, to the agent's self-metrics: its
// /metrics and the procfleet_* series it pushes through its pipeline
// write it among the agent's own sets, in the order of their names. name
// must not be one of the agent's own (process, generator, compress, ship,
// limit, scheduler, spool) nor given twice. Default: none. The agent only
// reads set; whoever made it keeps it current.
func WithMetricsSet(name string, set *metrics.Set) Option {
	return func(o *options) {
		if o.sets == nil {
			o.sets = map[string]*metrics.Set{}
		}
		o.sets[name] = set
	}
}

// addSets adds the extra sets of o to the agent's.
func (a *Agent) addSets(o options) error {
	for name, set := range o.sets {
		if _, ok := a.sets[name]; ok || set == nil {
			return fmt.Errorf("metrics set %q: the name is the agent's own, or the set is nil", name)
		}
		a.sets[name] = set
	}
	return nil
}
