package ship

import (
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestStreamToSilentUpstream: the path to a VictoriaMetrics that is being
// streamed to goes silent (its host vanished, a partition: packets are
// dropped, nothing resets the connection). Writes into the stream still
// succeed, into the socket's buffer, so the shipper finds out only from
// TCP: the connection is closed once data it sent goes unacknowledged for
// the response timeout (TCP_USER_TIMEOUT). The batches then go to the next
// upstream within seconds, not when the stream would have ended.
func TestStreamToSilentUpstream(t *testing.T) {
	vm := testenv.StartNetnsVM(t)
	next := newUpstream(t, nil)
	set := metrics.NewSet()
	cfg := testConfig(vm.ImportURL, next.URL())
	cfg.Strategy = config.StrategyOrdered
	cfg.StreamFor = config.Duration(2 * time.Minute)
	cfg.Timeouts.Send = config.Duration(30 * time.Second) // the default: not what finds the silence
	cfg.Timeouts.Response = config.Duration(2 * time.Second)
	cfg.RedeliverWindow = 0
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(0))) // alone: the answer says VictoriaMetrics
	s.Enqueue(batch(t, line(1))) // opens the stream
	waitFor(t, "the stream open", 10*time.Second, s.WantsText)

	vm.Cut(t)
	cut := time.Now()
	for i := 2; ; i++ {
		s.Enqueue(textBatch(line(i)))
		if slices.Contains(ids(next.received()), i-1) {
			break
		}
		if time.Since(cut) > 20*time.Second {
			t.Fatalf("20 s after the path went silent, the next upstream took lines %v; want the stream's batches there within seconds", ids(next.received()))
		}
		time.Sleep(time.Second)
	}
	t.Logf("batches on the next upstream %.1f s after the path went silent", time.Since(cut).Seconds())
	if got := metricValue(t, set, `procfleet_ship_streams_ended_total{result="failed"}`); got != 1 {
		t.Fatalf("streams failed = %v; want 1", got)
	}
	if st := stateOf(t, s, vm.ImportURL); st.Healthy {
		t.Fatalf("state of the silent upstream %+v; want unhealthy", st)
	}
}
