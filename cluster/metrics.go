package cluster

import (
	"io"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/cluster/keys"
)

// registerMetrics adds the member's gauges to set, read from its live
// state at each scrape, and a writer for the running gossip's
// procfleet_gossip_* series (none while no gossip runs; a gossip started
// again counts from zero).
func (m *Member) registerMetrics(set *metrics.Set) {
	gauge := func(name string, f func() float64) {
		set.NewGauge(name, func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return f()
		})
	}
	gauge("procfleet_cluster_config_revision", func() float64 { return float64(m.status.ConfigRevision) })
	gauge("procfleet_cluster_budget_bytes_per_second", func() float64 { return float64(m.status.BudgetBytesPerSecond) })
	gauge(`procfleet_cluster_members{kind="agent"}`, func() float64 { return float64(m.live[keys.Agent]) })
	gauge(`procfleet_cluster_members{kind="relay"}`, func() float64 { return float64(m.live[keys.Relay]) })
	gauge("procfleet_cluster_saved_state", func() float64 { return bool01(m.status.SavedState != "") })
	set.NewGauge("procfleet_cluster_gossip_running", func() float64 {
		g, _ := m.gossip.current()
		return bool01(g != nil)
	})
	set.RegisterMetricsWriter(func(w io.Writer) {
		if gs := m.gossip.metrics(); gs != nil {
			gs.WritePrometheus(w)
		}
	})
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// countLive records how many members of each kind are registered, for
// procfleet_cluster_members.
func (m *Member) countLive(set members) {
	n := map[keys.Kind]int{}
	for id := range set {
		n[id.Kind]++
	}
	m.mu.Lock()
	m.live = n
	m.mu.Unlock()
}
