package scrape

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestBudget checks the budget's admission: under the limit a scrape is
// let in whatever its size, at or over it the next one waits until bytes
// are given back, and a wait ends without taking anything when the loop
// is stopped or the context is done.
func TestBudget(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	var waits atomic.Int64
	if !b.acquire(ctx, nil, 250, func() { waits.Add(1) }) || waits.Load() != 0 {
		t.Fatalf("an output larger than the whole budget, alone: waited %d times; want let in at once", waits.Load())
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(ctx, nil, 10, func() { waits.Add(1) }) }()
	waitFor(t, "the second acquire to wait", 5*time.Second, func() bool { return b.waiting() == 1 })
	b.release(100) // 150 still taken: over the limit, the waiter stays
	waiting := b.waiting()
	select {
	case <-got:
		t.Fatal("a scrape was let in while 150 of 100 bytes were taken")
	default:
	}
	if waiting != 1 {
		t.Fatalf("%d waiters after a release that left the budget over its limit; want 1", waiting)
	}
	b.release(150)
	if ok := <-got; !ok || waits.Load() != 1 {
		t.Fatalf("the waiting acquire: ok %v, %d waits told; want true and 1", ok, waits.Load())
	}
	if n := b.inUse(); n != 10 {
		t.Fatalf("%d bytes in use; want 10", n)
	}
	b.grow(200)
	stop := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	res := make(chan bool, 2)
	go func() { res <- b.acquire(ctx, stop, 5, nil) }()
	go func() { res <- b.acquire(cctx, nil, 5, nil) }()
	waitFor(t, "two acquires to wait", 5*time.Second, func() bool { return b.waiting() == 2 })
	close(stop)
	cancel()
	if a, c := <-res, <-res; a || c {
		t.Fatal("an acquire stopped or cancelled while waiting took bytes")
	}
	if n := b.inUse(); n != 210 {
		t.Fatalf("%d bytes in use after aborted waits; want 210", n)
	}
}

// stallSink is a pipeline that takes nothing until opened: each Send
// waits for open (or the context's end).
type stallSink struct {
	pool *emit.Pool
	open chan struct{}
	mu   sync.Mutex
	text strings.Builder
}

func (s *stallSink) Send(ctx context.Context, b *emit.Buffer) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		s.pool.Put(b)
		return ctx.Err()
	}
	s.mu.Lock()
	s.text.Write(b.B)
	s.mu.Unlock()
	s.pool.Put(b)
	return nil
}

// TestScrapePendingBounded stalls the pipeline under twenty targets: the
// scrapes let in hold at most the pending budget (four first scrapes of
// 64 KiB under 200 KiB), the others wait before they send a request, and
// once the pipeline moves again every target is scraped and delivered.
func TestScrapePendingBounded(t *testing.T) {
	var requests atomic.Int64
	var body strings.Builder
	for i := range 500 { // about 50 KB of output: within a first scrape's 64 KiB
		fmt.Fprintf(&body, "pending_test_total{series=\"%04d\"} %d\n", i, i)
	}
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Write([]byte(body.String()))
	}))
	pool := emit.NewPool(16)
	s := &stallSink{pool: pool, open: make(chan struct{})}
	set := metrics.NewSet()
	m, err := New(Config{MaxBodyBytes: 1 << 20, MaxSamples: 10000, MaxPendingBytes: 200 << 10},
		Deps{Pool: pool, Sink: s, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	job := testJob("pending", time.Second)
	var targets []Target
	for i := range 20 {
		targets = append(targets, target(t, job, fmt.Sprintf("%s?t=%d", url, i), "tgt", strconv.Itoa(i)))
	}
	m.Apply(targets)
	runManager(t, m)
	h := &harness{m: m, set: set}
	// Every target is due within a second: four are let in, the other
	// sixteen wait, each once, before sending anything.
	waitFor(t, "sixteen scrapes to wait for the pending budget, four to be sent", 10*time.Second, func() bool {
		return h.metric("procfleet_scrape_pending_waits_total") >= 16 && requests.Load() >= 4
	})
	if n := requests.Load(); n != 4 {
		t.Fatalf("%d scrape requests were sent while the pipeline took nothing; the 200 KiB budget lets in 4", n)
	}
	if p := h.metric("procfleet_scrape_pending_bytes"); p != 4*firstExpect {
		t.Fatalf("procfleet_scrape_pending_bytes %v while stalled; want four first scrapes' %d", p, 4*firstExpect)
	}
	close(s.open)
	waitFor(t, "every target delivered, up, once the pipeline moves", 20*time.Second, func() bool {
		s.mu.Lock()
		text := s.text.String()
		s.mu.Unlock()
		smps, err := testenv.ParseSamples([]byte(text))
		if err != nil {
			t.Fatalf("the scraper wrote lines that do not parse: %v", err)
		}
		up := map[string]bool{}
		for _, smp := range smps {
			if smp.Name == "up" && smp.Value == 1 {
				up[smp.Labels["tgt"]] = true
			}
		}
		return len(up) == 20
	})
	// Let in under the bound, a scrape may pass it by its own size.
	if p := h.metric("procfleet_scrape_pending_bytes"); p >= 200<<10+firstExpect {
		t.Fatalf("procfleet_scrape_pending_bytes %v with the pipeline moving; want under the budget plus one scrape's %d", p, 200<<10+firstExpect)
	}
}

// TestBudgetOrder checks that waiting scrapes are let in in the order they
// came, and only as many as the bytes given back make room for.
func TestBudgetOrder(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	b.acquire(ctx, nil, 150, nil)
	in := make(chan int, 3)
	for i := range 3 {
		go func() {
			if b.acquire(ctx, nil, 60, nil) {
				in <- i
			}
		}()
		waitFor(t, fmt.Sprintf("waiter %d to queue", i), 5*time.Second, func() bool { return b.waiting() == i+1 })
	}
	b.release(100) // 50 taken: the first waiter fits, then 110 are taken
	if got := <-in; got != 0 {
		t.Fatalf("waiter %d let in first; want 0", got)
	}
	if w := b.waiting(); w != 2 {
		t.Fatalf("%d waiting after a release that made room for one; want 2", w)
	}
	b.release(50) // 60 taken: the second fits, then 120
	if got := <-in; got != 1 {
		t.Fatalf("waiter %d let in second; want 1", got)
	}
	if w, n := b.waiting(), b.inUse(); w != 1 || n != 120 {
		t.Fatalf("%d waiting, %d bytes taken; want 1 and 120", w, n)
	}
	b.release(120)
	if got := <-in; got != 2 {
		t.Fatalf("waiter %d let in third; want 2", got)
	}
}
