package ship

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// The queue drops its oldest batches to stay within its bytes, as within
// its count, and always takes the new batch, however large.
func TestQueueBytes(t *testing.T) {
	q := newQueue(8, 100)
	body := func(n int) *Batch { return &Batch{Body: make([]byte, n)} }
	a, b, c, d := body(40), body(40), body(30), body(200)
	for _, x := range []*Batch{a, b} {
		if got := q.push(x); got != nil {
			t.Fatalf("dropped %d batches within the bound", len(got))
		}
	}
	if got := q.push(c); len(got) != 1 || got[0] != a || q.size() != 70 || q.len() != 2 {
		t.Fatalf("push over 100 bytes dropped %d batches, left %d bytes in %d; want the oldest dropped, 70 in 2", len(got), q.size(), q.len())
	}
	if got := q.push(d); len(got) != 2 || got[0] != b || got[1] != c || q.size() != 200 || q.len() != 1 {
		t.Fatalf("push of a batch larger than the bound dropped %d, left %d bytes in %d; want the 2 others dropped, it alone queued", len(got), q.size(), q.len())
	}
	if q.pop() != d || q.size() != 0 {
		t.Fatalf("pop: size %d after", q.size())
	}
	unbounded := newQueue(2, 0)
	unbounded.push(body(1 << 20))
	if got := unbounded.push(body(1 << 20)); got != nil {
		t.Fatal("a queue without a byte bound dropped by bytes")
	}
	if got := unbounded.push(body(1)); len(got) != 1 {
		t.Fatal("the count bound no longer holds")
	}
}

// While the real VictoriaMetrics stalls (SIGSTOP), the batch in flight
// waits and the others queue: those beyond ship.queue_bytes go to the
// spool at once. It is then killed and started again (an outage): every
// sample of every batch is queryable, none twice, and the queue never
// held more than its bound.
func TestQueueBytesSpillsToSpoolVM(t *testing.T) {
	vm := testenv.StartVM(t)
	set := metrics.NewSet()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	cfg := testConfig(vm.ImportURL)
	cfg.QueueBatches = 256
	cfg.QueueBytes = 64 << 10
	cfg.Timeouts.Response = config.Duration(30 * time.Second) // the stall outlasts the test's enqueueing
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20})
	stop := run(t, s)
	vm.Pause()
	ts := time.Now().Add(-time.Minute).UnixMilli()
	const batches, lines = 60, 300
	maxQueued := int64(0)
	for i := range batches {
		var text []byte
		for j := range lines {
			// Incompressible enough that each batch is a few KiB.
			text = fmt.Appendf(text, "procfleet_queue_bytes_test{b=\"%d\",l=\"%d\",pad=\"%x\"} %d %d\n", i, j, uint64(i*7919+j)*0x9e3779b97f4a7c15, i*lines+j, ts)
		}
		s.Enqueue(zstdBatch(t, string(text)))
		maxQueued = max(maxQueued, s.q.size())
	}
	spooled := metricValue(t, set, "procfleet_ship_spooled_batches_total")
	t.Logf("queued at most %d bytes; %v batches spooled, %d queued (%d bytes)", maxQueued, spooled, s.QueueLen(), s.q.size())
	if maxQueued > int64(cfg.QueueBytes) {
		t.Fatalf("the queue held %d bytes; want at most queue_bytes %d", maxQueued, cfg.QueueBytes)
	}
	if spooled < batches/2 || s.QueueLen() == 0 || int(spooled)+s.QueueLen() < batches-1 {
		t.Fatalf("%v batches spooled, %d queued; want those over queue_bytes spooled, the rest queued", spooled, s.QueueLen())
	}
	vm.Kill()
	vm.Restart(t)
	want := batches * lines
	waitFor(t, "every sample in VictoriaMetrics", 60*time.Second, func() bool {
		vm.Flush(t)
		got, err := vm.TryExport(`procfleet_queue_bytes_test`)
		return err == nil && len(got) == want && s.QueueLen() == 0 && sp.Len() == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var vals []int
	for _, got := range vm.Export(t, `procfleet_queue_bytes_test`) {
		if len(got.Values) != 1 || got.Timestamps[0] != ts {
			t.Fatalf("series %v holds %d samples at %v; want one at %d", got.Metric, len(got.Values), got.Timestamps, ts)
		}
		vals = append(vals, int(got.Values[0]))
	}
	slices.Sort(vals)
	for i, v := range vals {
		if v != i {
			t.Fatalf("values %v...; want each of 0..%d once", vals[max(i-3, 0):i+1], want-1)
		}
	}
	for _, name := range []string{`procfleet_ship_dropped_batches_total{reason="queue_full"}`,
		`procfleet_ship_dropped_batches_total{reason="spool_full"}`, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`} {
		if n := metricValue(t, set, name); n != 0 {
			t.Fatalf("%s = %v", name, n)
		}
	}
}
