package ship

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/config"
)

func openSpool(t *testing.T, dir string, cfg spool.Config) *spool.Log {
	t.Helper()
	l, err := spool.Open(dir, cfg, metrics.NewSet())
	if err != nil {
		t.Fatalf("spool.Open: %v", err)
	}
	return l
}

func spoolConfig() spool.Config {
	c := spool.DefaultConfig()
	c.SegmentBytes = 64 << 10
	c.SyncInterval = 0
	c.AckInterval = 0
	return c
}

var lineID = regexp.MustCompile(`i="(\d+)"`)

// ids returns the line ids in the bodies of ps, in order.
func ids(ps []post) []int {
	var out []int
	for _, p := range ps {
		for _, m := range lineID.FindAllStringSubmatch(p.body, -1) {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// failAll answers every request with 500, probes included.
func failAll(_ int, w http.ResponseWriter, _ *http.Request) bool {
	http.Error(w, "down", http.StatusInternalServerError)
	return true
}

// An upstream outage sends batches to the spool instead of dropping them;
// once the upstream is back every line arrives exactly once, spooled
// batches merged into fewer requests.
func TestSpoolOutageThenReplay(t *testing.T) {
	up := newUpstream(t, failAll)
	set := metrics.NewSet()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	cfg := testConfig(up.URL())
	cfg.QueueBatches = 4 // overflow goes to the spool too
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20})
	stop := run(t, s)
	const n = 40
	for i := range n {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "every batch spooled", 10*time.Second, func() bool {
		return s.QueueLen() == 0 && sp.Len() == n
	})
	posts, _ := up.counts()
	up.setFault(nil)
	waitFor(t, "the spool replayed", 10*time.Second, func() bool { return sp.Len() == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := ids(up.received())
	slices.Sort(got)
	if want := span(0, n); !slices.Equal(got, want) {
		t.Fatalf("lines delivered = %v; want each of 0..%d once", got, n-1)
	}
	if after, _ := up.counts(); after-posts >= n/2 {
		t.Fatalf("replay took %d requests for %d batches; want them merged", after-posts, n)
	}
	for name, want := range map[string]float64{
		"procfleet_ship_spooled_batches_total":                             n,
		"procfleet_ship_replayed_batches_total":                            n,
		`procfleet_ship_dropped_batches_total{reason="queue_full"}`:        0,
		`procfleet_ship_dropped_batches_total{reason="drain_timeout"}`:     0,
		`procfleet_ship_dropped_batches_total{reason="spool_full"}`:        0,
		`procfleet_ship_dropped_batches_total{reason="unreadable_record"}`: 0,
	} {
		if got := metricValue(t, set, name); got != want {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// A graceful stop while the upstream is down writes the queued batches to
// the spool; a new shipper on the same directory delivers them.
func TestSpoolStopKeepsQueuedBatches(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t, failAll)
	sp := openSpool(t, dir, spoolConfig())
	cfg := testConfig(up.URL())
	cfg.DrainTimeout = config.Duration(200 * time.Millisecond)
	cfg.ProbeInterval = config.Duration(time.Hour) // stays unhealthy
	s := newShipper(t, cfg, Deps{Spool: sp})
	stop := run(t, s)
	const n = 10
	for i := range n {
		s.Enqueue(batch(t, line(i)))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	up.setFault(nil)
	sp = openSpool(t, dir, spoolConfig())
	defer sp.Close()
	if sp.Len() != n {
		t.Fatalf("spool holds %d batches after the stop; want %d", sp.Len(), n)
	}
	s = newShipper(t, testConfig(up.URL()), Deps{Spool: sp})
	stop = run(t, s)
	waitFor(t, "the spool replayed", 10*time.Second, func() bool { return sp.Len() == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := ids(up.received())
	slices.Sort(got)
	if !slices.Equal(got, span(0, n)) {
		t.Fatalf("lines delivered = %v; want 0..%d once each", got, n-1)
	}
}

// Replay of a backlog goes through the limiter: the bytes sent per second
// stay within the budget.
func TestSpoolReplayWithinBudget(t *testing.T) {
	up := newUpstream(t, nil)
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	// 60 batches of about 4 KiB of incompressible-ish text.
	var total int
	for i := range 60 {
		var b strings.Builder
		for j := range 60 {
			b.WriteString(line(i*1000 + j))
		}
		bt := batch(t, b.String())
		total += len(bt.Body)
		if err := sp.Append(appendRecord(nil, bt), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rate := int64(total / 2) // the backlog takes about 2 s at this rate
	lim := limit.New(config.Limit{BytesPerSecond: config.ByteRate(rate), Burst: config.ByteSize(rate / 10)}, metrics.NewSet())
	s := newShipper(t, testConfig(up.URL()), Deps{Spool: sp, Limiter: lim, SpoolBatchBytes: int(rate / 20)})
	start := time.Now()
	stop := run(t, s)
	waitFor(t, "the spool replayed", 20*time.Second, func() bool { return sp.Len() == 0 })
	elapsed := time.Since(start)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sent := s.SentBytes()
	// Burst plus rate times elapsed bounds what the limiter lets through;
	// one request may overdraw it by its size (debt, repaid later).
	if max := float64(rate)*elapsed.Seconds() + float64(rate/10) + float64(rate/20); float64(sent) > max {
		t.Fatalf("sent %d bytes in %s; the budget allows at most %.0f", sent, elapsed, max)
	}
	if elapsed < 1500*time.Millisecond {
		t.Fatalf("a 2 s backlog replayed in %s: the limiter was not applied", elapsed)
	}
}

// A full spool with the refuse policy drops the new batch and counts it.
func TestSpoolFullDropsNewBatch(t *testing.T) {
	up := newUpstream(t, failAll)
	set := metrics.NewSet()
	c := spoolConfig()
	c.MaxBytes = 128 << 10
	c.Full = spool.Refuse
	sp := openSpool(t, t.TempDir(), c)
	defer sp.Close()
	cfg := testConfig(up.URL())
	cfg.ProbeInterval = config.Duration(time.Hour)
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp})
	stop := run(t, s)
	big := strings.Repeat("x", 30<<10)
	for i := range 8 {
		s.Enqueue(&Batch{Body: []byte(big + strconv.Itoa(i)), Created: time.Now()})
	}
	waitFor(t, "batches spooled or dropped", 10*time.Second, func() bool {
		return metricValue(t, set, "procfleet_ship_spooled_batches_total")+
			metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="spool_full"}`) == 8
	})
	if d := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="spool_full"}`); d < 1 {
		t.Fatalf("no batch counted as dropped for a full spool")
	}
	_ = stop()
}

// Spooled batches keep their own query arguments and encoding: a plain
// body goes without Content-Encoding, and only records alike are merged.
func TestSpoolRecordQueryAndPlain(t *testing.T) {
	type req struct {
		query, enc, body string
	}
	var mu sync.Mutex
	var got []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, req{r.URL.RawQuery, r.Header.Get("Content-Encoding"), string(b)})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	for _, b := range []*Batch{
		{Body: []byte("a 1"), Plain: true, Query: "extra_label=x%3D1"},
		{Body: []byte("b 2\n"), Plain: true, Query: "extra_label=x%3D1"},
		{Body: []byte("c 3\n"), Plain: true, Query: "extra_label=x%3D2"},
	} {
		if err := sp.Append(appendRecord(nil, b), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s := newShipper(t, testConfig(srv.URL+"/api/v1/import/prometheus?extra_label=up%3D1"), Deps{Spool: sp, SpoolBatchBytes: 1 << 20})
	stop := run(t, s)
	waitFor(t, "the spool replayed", 5*time.Second, func() bool { return sp.Len() == 0 })
	_ = stop()
	want := []req{
		{"extra_label=up%3D1&extra_label=x%3D1", "", "a 1\nb 2\n"},
		{"extra_label=up%3D1&extra_label=x%3D2", "", "c 3\n"},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("requests = %q; want %q", got, want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, b := range []*Batch{
		{Body: []byte("gz"), Samples: 3, Query: "timestamp=1"},
		{Body: nil, Plain: true},
		{Body: []byte(strings.Repeat("x", 1000)), Samples: 1 << 30, Query: strings.Repeat("q", 300)},
		{Body: []byte("zs"), Zstd: true, OwnLabels: true, Samples: 2},
	} {
		now := time.UnixMilli(1700000000123)
		got, err := parseRecord(appendRecord([]byte{}, b), now)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Body) != string(b.Body) || got.Samples != b.Samples || got.Query != b.Query || got.Plain != b.Plain ||
			got.Zstd != b.Zstd || got.OwnLabels != b.OwnLabels || !got.Created.Equal(now) {
			t.Fatalf("round trip of %+v = %+v", b, got)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0}, {1, 0, 0x80}, {1, 0, 0, 5, 'a'}, {1, flagPlain | flagZstd, 0, 0}, {1, 1 << 3, 0, 0}} {
		if _, err := parseRecord(bad, time.Now()); err == nil {
			t.Fatalf("record %v accepted", bad)
		}
	}
}
