package ship

import (
	"net/http"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

// TestStrategies checks that round_robin spreads batches over healthy
// upstreams and ordered sends everything to the first healthy one, failing
// over along the list when it breaks.
func TestStrategies(t *testing.T) {
	t.Run("round_robin", func(t *testing.T) {
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		s := newShipper(t, testConfig(a.URL(), b.URL()), Deps{Metrics: metrics.NewSet()})
		run(t, s)
		for i := range 6 {
			s.Enqueue(batch(t, line(i)))
		}
		waitFor(t, "6 batches", 5*time.Second, func() bool { return len(a.received())+len(b.received()) == 6 })
		if na, nb := len(a.received()), len(b.received()); na != 3 || nb != 3 {
			t.Fatalf("round robin sent %d and %d batches; want 3 and 3", na, nb)
		}
	})
	t.Run("ordered", func(t *testing.T) {
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		cfg := testConfig(a.URL(), b.URL())
		cfg.Strategy = config.StrategyOrdered
		s := newShipper(t, cfg, Deps{Metrics: metrics.NewSet()})
		run(t, s)
		for i := range 4 {
			s.Enqueue(batch(t, line(i)))
		}
		waitFor(t, "4 batches on the first upstream", 5*time.Second, func() bool { return len(a.received()) == 4 })
		if n := len(b.received()); n != 0 {
			t.Fatalf("ordered sent %d batches to the second upstream while the first was healthy", n)
		}
		a.setFault(func(_ int, w http.ResponseWriter, r *http.Request) bool {
			http.Error(w, "down", http.StatusInternalServerError)
			return true
		})
		for i := range 3 {
			s.Enqueue(batch(t, line(10+i)))
		}
		waitFor(t, "failover to the second upstream", 10*time.Second, func() bool { return len(b.received()) == 3 })
	})
}
