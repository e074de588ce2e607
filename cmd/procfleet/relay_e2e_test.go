package main

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestRelaySIGKILLLoop proves the relay's promise, nothing accepted is
// lost, across crashes: while three clients post bodies of unique samples,
// the relay binary is killed with SIGKILL four times at random points and
// restarted on the same port and data dir. At the end every body that got
// 204 is in VictoriaMetrics, whole; no body that got another status is;
// an unanswered body is there whole or not at all.
//
// The relay delivers at least once: the ack file is written at most once a
// second, so a crash sends again the bodies acknowledged upstream since.
// VictoriaMetrics runs with -dedup.minScrapeInterval=1ms, under which
// /api/v1/export and queries return each (series, timestamp) once (without
// it, export returns a sample as often as it was imported, and
// count_over_time counts every copy). Each sample is counted once by
// sum(count_over_time(...[1h])), compared with the distinct samples
// exported; the re-delivered copies are measured as the rows
// VictoriaMetrics took (vm_rows_inserted_total) beyond the distinct ones.
func TestRelaySIGKILLLoop(t *testing.T) {
	vm := testenv.StartVM(t, "-dedup.minScrapeInterval=1ms", "-search.disableCache")
	r := newRelay(t, filepath.Join(t.TempDir(), "wal"), relayShipConfig, vm.ImportURL)
	r.start()
	r.waitReady()
	g := newLoadGen(t, r.importURL(), "relay_kill_sample")
	g.start(3, 5*time.Millisecond)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill schedule seed %d", seed)
	var lastStart time.Time
	for range 4 {
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond))))
		r.kill()
		r.start()
		lastStart = time.Now()
	}
	recovery := r.waitReady()
	time.Sleep(300 * time.Millisecond) // some load for the last run too
	g.halt()
	drain := r.waitDrained(30 * time.Second)
	drained := time.Now()
	if !r.running() {
		t.FailNow()
	}

	s := g.verify(vm)
	rows, err := vm.RowsInserted()
	if err != nil {
		t.Fatal(err)
	}
	if s.accepted < 20 {
		t.Fatalf("only %d bodies accepted; the load did not run", s.accepted)
	}
	t.Logf("bodies: %d posted, %d accepted (%d samples), %d refused, %d unanswered (%d of them arrived whole)",
		s.bodies, s.accepted, s.acceptedSamples, s.refused, s.unknown, s.unknownArrived)
	t.Logf("VictoriaMetrics: %d distinct samples, %.0f rows imported, %.0f re-delivered duplicates",
		s.present, rows, rows-float64(s.present))
	t.Logf("last run: ready %s after start, log drained %s after the load stopped (%s after the last restart)",
		recovery.Round(time.Millisecond), drain.Round(time.Millisecond), drained.Sub(lastStart).Round(time.Millisecond))
}

// TestRelayForwardsBacklogInBatches checks forward.batch_bytes: a backlog
// of stored bodies that share encoding and query arguments is forwarded
// several bodies to a request, up to 4MiB by default. Forty gzip bodies
// posted as an agent posts them (no query arguments) while the upstream
// is down must reach VictoriaMetrics in a few requests, not forty.
//
// It fails today: the relay stores each body with timestamp=<arrival in
// ms> added to its query (relay/import.go, importQuery), so no two bodies
// share a query and the shipper's mergeRecords never joins them; a
// backlog drains one request per body.
func TestRelayForwardsBacklogInBatches(t *testing.T) {
	vm := testenv.StartVM(t, "-dedup.minScrapeInterval=1ms", "-search.disableCache")
	r := newRelay(t, filepath.Join(t.TempDir(), "wal"), relayShipConfig, "http://"+testenv.FreeAddr(t)+"/api/v1/import/prometheus")
	r.start()
	r.waitReady()
	g := newLoadGen(t, r.importURL(), "relay_merge_sample")
	g.allGzip = true
	const bodies = 40
	for range bodies {
		if b := g.postOne(0, 50); b.outcome != accepted {
			t.Fatalf("HTTP %d %q", b.status, b.answer)
		}
	}
	r.kill()
	r.upstream = vm.ImportURL
	r.start()
	r.waitDrained(30 * time.Second)
	s := g.verify(vm)
	reqs := r.mustMetric("procfleet_ship_requests_total")
	if reqs > 4 {
		t.Errorf("%d stored gzip bodies (%d samples, no query arguments) forwarded in %v requests; want them joined up to forward.batch_bytes (4MiB), a few requests",
			bodies, s.acceptedSamples, reqs)
	}
}
