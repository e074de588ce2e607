package ship

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestRealVictoriaMetrics ships to the pinned VictoriaMetrics: the import
// path, gzip, extra_label, the /health probe and a 400 for a bad body.
func TestRealVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	set := metrics.NewSet()
	q := url.Values{"extra_label": {"instance=host1", "job=procfleet"}}
	s := newShipper(t, testConfig(vm.ImportURL), Deps{Metrics: set, Query: q})
	run(t, s)

	ts := time.Now().UnixMilli()
	s.Enqueue(batch(t, "procfleet_ship_test_value{k=\"v\"} 42 "+itoa(ts)+"\n"))
	s.Enqueue(&Batch{Body: []byte("not gzip")})
	waitFor(t, "series in VictoriaMetrics", 15*time.Second, func() bool {
		vm.Flush(t)
		got, err := vm.TryExport(`procfleet_ship_test_value`)
		return err == nil && len(got) == 1 && len(got[0].Values) == 1
	})
	got := vm.Export(t, `procfleet_ship_test_value`)[0]
	if got.Metric["instance"] != "host1" || got.Metric["job"] != "procfleet" || got.Metric["k"] != "v" ||
		got.Values[0] != 42 || got.Timestamps[0] != ts {
		t.Fatalf("exported %+v", got)
	}
	waitFor(t, "the bad body rejected", 5*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`) == 1
	})
	if st := stateOf(t, s, vm.ImportURL); !st.Healthy {
		t.Fatalf("state = %+v", st)
	}

	// The probe of a real VictoriaMetrics brings an endpoint back.
	s.mu.Lock()
	ep := s.eps[0]
	ep.healthy.Store(false)
	s.mu.Unlock()
	waitFor(t, "probe back", 5*time.Second, func() bool { return stateOf(t, s, vm.ImportURL).Healthy })
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
