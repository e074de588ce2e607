package scrape

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
)

// gateSink holds every Send until open is closed, and counts the Sends
// waiting at once.
type gateSink struct {
	pool    *emit.Pool
	open    chan struct{}
	in, top atomic.Int32
	mu      sync.Mutex
	lines   int
}

func (s *gateSink) Send(ctx context.Context, b *emit.Buffer) error {
	n := s.in.Add(1)
	for {
		top := s.top.Load()
		if n <= top || s.top.CompareAndSwap(top, n) {
			break
		}
	}
	defer s.in.Add(-1)
	defer s.pool.Put(b)
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	for _, c := range b.B {
		if c == '\n' {
			s.lines++
		}
	}
	s.mu.Unlock()
	return nil
}

// While the pipeline takes nothing, every target is still requested and
// its body read, but only the manager's parse slots hold lines waiting
// for the pipeline: a stalled compressor costs the bodies as sent, not
// the scrapes' lines. Once it takes again, every target's lines arrive.
func TestScrapeParseSlots(t *testing.T) {
	const targets = 12
	pool := emit.NewPool(64)
	s := &gateSink{pool: pool, open: make(chan struct{})}
	m, err := New(DefaultConfig(), Deps{Pool: pool, Sink: s, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	slots := int32(cap(m.slots))
	if slots >= targets {
		t.Skipf("GOMAXPROCS %d leaves no target waiting for a parse slot", slots)
	}
	var served atomic.Int32
	var body []byte
	for i := range 1000 {
		body = fmt.Appendf(body, "slot_test_series{i=\"%d\"} %d\n", i, i)
	}
	var tgs []Target
	for i := range targets {
		u := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Write(body)
			served.Add(1)
		})
		tgs = append(tgs, target(t, testJob(fmt.Sprintf("slots-%d", i), time.Second), u))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	m.Apply(tgs)
	waitFor(t, "every target served", 20*time.Second, func() bool { return served.Load() >= targets })
	waitFor(t, "the parse slots' scrapes at the pipeline", 20*time.Second, func() bool { return s.in.Load() == slots })
	// The bodies were read; the other scrapes could reach the pipeline
	// now, were they not waiting for a slot.
	time.Sleep(200 * time.Millisecond)
	if top := s.top.Load(); top > slots {
		t.Fatalf("%d scrapes held lines for the pipeline at once; want at most the %d parse slots", top, slots)
	}
	close(s.open)
	waitFor(t, "every target's lines delivered", 20*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.lines >= targets*1005
	})
}
