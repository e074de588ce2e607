package scrape

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// counted serves body and counts its requests.
func counted(t testing.TB, body string) (url string, n *atomic.Int64) {
	n = new(atomic.Int64)
	url = serve(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		text(body)(w, r)
	})
	return url, n
}

func (h *harness) loop(key string) *loop {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return h.m.loops[key]
}

// TestApply checks live changes of the target set: a new target starts,
// a target whose job's scrape settings changed restarts, the others keep
// their loop, and a target removed is no longer requested.
func TestApply(t *testing.T) {
	const interval = 200 * time.Millisecond
	h := startManager(t, DefaultConfig(), Deps{})
	ua, na := counted(t, "a 1\n")
	ub, nb := counted(t, "b 1\n")
	uc, nc := counted(t, "c 1\n")
	a, b := target(t, testJob("a", interval), ua), target(t, testJob("b", interval), ub)
	h.m.Apply([]Target{a, b})
	waitFor(t, "a and b scraped", 20*time.Second, func() bool { return na.Load() >= 1 && nb.Load() >= 1 })
	la, lb := h.loop(a.Key()), h.loop(b.Key())

	b2 := target(t, testJob("b", interval), ub)
	b2.Job.SampleLimit = 100
	c := target(t, testJob("c", interval), uc)
	h.m.Apply([]Target{a, b2, c})
	waitFor(t, "c scraped", 20*time.Second, func() bool { return nc.Load() >= 1 })
	if h.loop(a.Key()) != la {
		t.Fatal("a's loop restarted although nothing of it changed")
	}
	if l := h.loop(b.Key()); l == lb || l.t.Job.SampleLimit != 100 {
		t.Fatal("b's loop was not restarted with its job's new sample_limit")
	}
	if len(h.m.Targets()) != 3 {
		t.Fatalf("Targets() = %d; want 3", len(h.m.Targets()))
	}
	lc := h.loop(c.Key())
	c2 := c
	c2.Interval = 2 * interval
	h.m.Apply([]Target{a, b2, c2})
	waitFor(t, "c restarted with its new interval", 20*time.Second, func() bool {
		l := h.loop(c.Key())
		return l != nil && l != lc && l.t.Interval == 2*interval
	})
	if h.loop(a.Key()) != la {
		t.Fatal("a's loop restarted although nothing of it changed")
	}

	h.m.Apply([]Target{a})
	waitFor(t, "b and c gone", 20*time.Second, func() bool { return len(h.m.Targets()) == 1 })
	<-lb.done
	bAt, cAt := nb.Load(), nc.Load()
	// a's scrapes going on show that b and c had their instants too.
	aAt := na.Load()
	waitFor(t, "three more scrapes of a", 20*time.Second, func() bool { return na.Load() >= aAt+3 })
	if nb.Load() > bAt+1 || nc.Load() > cAt+1 {
		t.Fatalf("removed targets requested again: b %d -> %d, c %d -> %d", bAt, nb.Load(), cAt, nc.Load())
	}
}

// TestApplyRemovesAfterScrapeInFlight removes a target while it is being
// scraped: the scrape completes and is delivered, and no other starts.
func TestApplyRemovesAfterScrapeInFlight(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-release
		}
		text("slow 1\n")(w, r)
	})
	job := testJob("slow", 500*time.Millisecond)
	h := startManager(t, DefaultConfig(), Deps{})
	tg := target(t, job, u)
	h.m.Apply([]Target{tg})
	waitFor(t, "the request in flight", 20*time.Second, func() bool { return n.Load() == 1 })
	l := h.loop(tg.Key())
	h.m.Apply(nil)
	waitFor(t, "the target removed", 20*time.Second, func() bool { return len(h.m.Targets()) == 0 })
	close(release)
	<-l.done
	if s := h.sink.reports(t, "slow", tg.Address); len(s) != 1 {
		t.Fatalf("the scrape in flight delivered %d samples; want 1", len(s))
	}
	if up := h.sink.reports(t, "up", tg.Address); len(up) != 1 || up[0].Value != 1 || n.Load() != 1 {
		t.Fatalf("up %+v after %d requests; want one scrape, up 1", up, n.Load())
	}
}
