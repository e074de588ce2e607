package relay

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// Prometheus v0.316.0 (bin/prometheus, built by make tools) scrapes the
// relay's own /metrics and remote-writes each scrape through the relay
// (1.0, then 2.0 in a second run) into one VictoriaMetrics and, with 1.0,
// straight into a second one. Samples up to a cut taken while both are
// running must be the same in both stores: series, values, timestamps.
func TestPrometheusThroughRelay(t *testing.T) {
	for _, v := range []struct {
		name, message string
		version       string
	}{
		{"1.0", "prometheus.WriteRequest", "1"},
		{"2.0", "io.prometheus.write.v2.Request", "2"},
	} {
		t.Run(v.name, func(t *testing.T) {
			viaRelay, direct := testenv.StartVM(t), testenv.StartVM(t)
			r := start(t, testConfig(t, viaRelay.ImportURL))
			testenv.StartPrometheus(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: promtest
    static_configs:
      - targets: [%q]
        labels: {zone: "ünï"}
remote_write:
  - url: %q
    protobuf_message: %s
    queue_config: {batch_send_deadline: 200ms}
  - url: %q
    queue_config: {batch_send_deadline: 200ms}
`, r.Addr(), r.base+WritePath, v.message, "http://"+direct.Addr+"/api/v1/write"), "--log.level=warn")
			waitFor(t, "4 requests remote-written to the relay", 60*time.Second, func() bool {
				return r.metric(t, fmt.Sprintf(`procfleet_relay_remote_write_requests_total{version=%q}`, v.version)) >= 4
			})
			// Samples before the cut were scraped while both outputs ran.
			cut := time.Now().Add(-time.Second).UnixMilli()
			export := func(vm *testenv.VM) (map[string]string, int) {
				vm.Flush(t)
				out, n := map[string]string{}, 0
				for _, s := range vm.Export(t, `{job="promtest"}`) {
					var b []byte
					for i, ts := range s.Timestamps {
						if ts <= cut && !math.IsNaN(s.Values[i]) {
							b = fmt.Appendf(b, "%v@%d ", s.Values[i], ts)
							n++
						}
					}
					if len(b) > 0 {
						out[s.Key()] = string(b)
					}
				}
				return out, n
			}
			var got, want map[string]string
			var n int
			waitFor(t, "both stores hold the same samples up to the cut", 30*time.Second, func() bool {
				var ng, nw int
				got, ng = export(viaRelay)
				want, nw = export(direct)
				n = ng
				return len(want) > 20 && ng == nw
			})
			if n := r.metric(t, `procfleet_relay_rejected_total{reason="bad_series"}`); n != 0 {
				t.Fatalf("the relay refused %v of Prometheus' requests", n)
			}
			for k, w := range want {
				if g := got[k]; g != w {
					t.Fatalf("%s: through the relay %q; directly %q", k, g, w)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d series through the relay; %d directly", len(got), len(want))
			}
			up := testenv.SeriesKey("up", map[string]string{"job": "promtest", "instance": r.Addr(), "zone": "ünï"})
			if _, ok := got[up]; !ok {
				t.Fatalf("no up through the relay with the target's labels (%s)", up)
			}
			t.Logf("remote write %s: %d series, %d samples the same in both stores", v.name, len(got), n)
		})
	}
}
