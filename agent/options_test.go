package agent

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

func TestWithMetricsSet(t *testing.T) {
	cfg := config.DefaultAgent()
	cfg.Hostname = "h"
	cfg.Ship.Upstreams = []string{"http://127.0.0.1:1/api/v1/import/prometheus"}
	set := metrics.NewSet()
	set.NewGauge("procfleet_cluster_config_revision", func() float64 { return 42 })
	a, err := New(cfg, nil, WithMetricsSet("cluster", set))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	page := "\n" + rec.Body.String()
	if !strings.Contains(page, "\nprocfleet_cluster_config_revision 42\n") {
		t.Errorf("/metrics lacks the extra set's series:\n%s", page)
	}
	// Sets are written in the order of their names: cluster before compress.
	if i, j := strings.Index(page, "procfleet_cluster_"), strings.Index(page, "procfleet_compress_"); i < 0 || j < 0 || i > j {
		t.Errorf("cluster's series at %d, compress' at %d; want cluster first", i, j)
	}
	// And the self generator pushes it.
	found := false
	for _, s := range a.orderedSets() {
		found = found || s == set
	}
	if !found {
		t.Error("the self generator's sets lack the extra set")
	}

	if _, err := New(cfg, nil, WithMetricsSet("ship", metrics.NewSet())); err == nil || !strings.Contains(err.Error(), `metrics set "ship"`) {
		t.Errorf("a set named ship: %v; want an error naming it", err)
	}
}
