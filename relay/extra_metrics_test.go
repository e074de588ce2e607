package relay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestAddMetricsSet(t *testing.T) {
	r, err := New(testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus"), nil)
	if err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	set.NewGauge("procfleet_cluster_config_revision", func() float64 { return 42 })
	r.AddMetricsSet(set)
	var b bytes.Buffer
	r.WritePrometheus(&b)
	page := b.String()
	i, j := strings.Index(page, "\nprocfleet_cluster_config_revision 42\n"), strings.Index(page, "procfleet_relay_received_bytes_total")
	if i < 0 || j < 0 || i < j {
		t.Errorf("the added set is not written after the relay's own (at %d, relay's at %d):\n%s", i, j, page)
	}
}
