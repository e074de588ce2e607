package ship

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

var rwLineID = regexp.MustCompile(`i=(\d+)`)

// rwIDs returns the line ids in the series of ps, in order.
func rwIDs(ps []rwPost) []int {
	var out []int
	for _, p := range ps {
		for _, s := range p.series {
			if m := rwLineID.FindStringSubmatch(s); m != nil {
				n, _ := strconv.Atoi(m[1])
				out = append(out, n)
			}
		}
	}
	return out
}

// Batches are spooled as they were made (gzip text) whatever the
// upstream's protocol: after an outage of a remote-write upstream the
// spool is replayed, several records (gzip members) merged into one
// request, each line once, with the agent's labels.
func TestRemoteWriteSpoolReplay(t *testing.T) {
	up := newRWUpstream(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	set := metrics.NewSet()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	cfg := rwConfig(1, up.URL())
	cfg.QueueBatches = 4
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20,
		Query: map[string][]string{"extra_label": {"instance=h", "job=procfleet"}}})
	stop := run(t, s)
	const n = 30
	for i := range n {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "every batch spooled", 10*time.Second, func() bool { return s.QueueLen() == 0 && sp.Len() == n })
	before := up.requests()
	up.mu.Lock()
	up.fault = nil
	up.mu.Unlock()
	waitFor(t, "the spool replayed", 10*time.Second, func() bool { return sp.Len() == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := rwIDs(up.received())
	slices.Sort(got)
	if want := span(0, n); !slices.Equal(got, want) {
		t.Fatalf("lines delivered = %v; want each of 0..%d once", got, n-1)
	}
	if after := up.requests(); after-before >= n/2 {
		t.Fatalf("replay took %d requests for %d batches; want them merged", after-before, n)
	}
	for _, p := range up.received() {
		for _, s := range p.series {
			id := rwLineID.FindStringSubmatch(s)[1]
			if want := "__name__=m,i=" + id + ",instance=h,job=procfleet " + id + "@1700000000000"; s != want {
				t.Fatalf("series %q; want %q", s, want)
			}
		}
	}
}

// A batch that the import upstream fails goes to the remote-write one,
// converted, and the other way round: failover keeps working across
// protocols.
func TestRemoteWriteFailoverAcrossProtocols(t *testing.T) {
	imp := newUpstream(t, nil)
	rw := newRWUpstream(t, false, nil)
	cfg := testConfig(imp.URL(), rw.URL())
	cfg.Strategy = config.StrategyOrdered
	cfg.Protocols = map[string]config.UpstreamProtocol{rw.URL(): {Protocol: config.ProtocolRemoteWrite}}
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "batch 1 on the import upstream", 5*time.Second, func() bool { return len(imp.received()) == 1 })
	imp.setFault(failAll)
	s.Enqueue(batch(t, line(2)))
	waitFor(t, "batch 2 on the remote-write upstream", 5*time.Second, func() bool { return len(rw.received()) == 1 })
	if got := rw.received()[0].series; !slices.Equal(got, []string{"__name__=m,i=2 2@1700000000000"}) {
		t.Fatalf("remote write received %q", got)
	}
	if got := ids(imp.received()); !slices.Equal(got, []int{1}) {
		t.Fatalf("import received %v", got)
	}
}
