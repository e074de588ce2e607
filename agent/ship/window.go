package ship

import (
	"time"

	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/spool"
)

// kept is what one upstream acknowledged in one request, kept to be sent
// again should that upstream become unreachable within the window: a
// batch from memory, or a run of spooled records that stay on disk, held
// (see spool.Log.Hold).
type kept struct {
	ep    *endpoint
	at    time.Time // when ep acknowledged it
	size  int64     // body bytes
	n     int       // batches: 1, or the spooled records it spans
	batch *Batch    // from memory; nil for spooled records
	from  spool.Pos // spooled records: the first one ...
	last  uint64    // ... and the sequence number of the last
}

// window keeps what the upstreams acknowledged within span, at most
// maxBytes of bodies, oldest acknowledgement first, and what was taken
// from an upstream that became unreachable, waiting to be sent again
// (pending). Its methods are safe for concurrent use: the sender adds,
// trims and sends again; a probe may take an upstream's batches.
type window struct {
	span     time.Duration
	maxBytes int64
	// ready holds a token when something was made pending, to wake an
	// idle sender.
	ready   chan struct{}
	evicted *metrics.Counter

	mu      sync.Mutex
	kept    []kept // by at
	pending []kept // oldest first
	bytes   int64  // of kept and pending
	batches int    // of kept and pending
}

func newWindow(span time.Duration, maxBytes int64, set *metrics.Set) *window {
	w := &window{span: span, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
	w.evicted = set.NewCounter("procfleet_ship_redeliver_evicted_batches_total")
	set.NewGauge("procfleet_ship_redeliver_window_bytes", func() float64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return float64(w.bytes)
	})
	set.NewGauge("procfleet_ship_redeliver_window_batches", func() float64 {
		w.mu.Lock()
		defer w.mu.Unlock()
		return float64(w.batches)
	})
	return w
}

// add keeps k, acknowledged at k.at, and trims the window at that time.
func (w *window) add(k kept) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kept = append(w.kept, k)
	w.bytes += k.size
	w.batches += k.n
	w.trimLocked(k.at)
}

// trim lets go of what is older than the window at now, and of the oldest
// while over maxBytes (counted as evicted). Pending batches are never let
// go: they were taken from an upstream that lost them.
func (w *window) trim(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trimLocked(now)
}

func (w *window) trimLocked(now time.Time) {
	i := 0
	for ; i < len(w.kept); i++ {
		k := &w.kept[i]
		switch {
		case now.Sub(k.at) >= w.span:
		case w.bytes > w.maxBytes:
			w.evicted.Add(k.n)
		default:
			w.dropFront(i)
			return
		}
		w.bytes -= k.size
		w.batches -= k.n
	}
	w.dropFront(i)
}

// dropFront removes the first i kept entries, letting their batches go.
func (w *window) dropFront(i int) {
	if i == 0 {
		return
	}
	clear(w.kept[:i])
	w.kept = w.kept[i:]
	if len(w.kept) == 0 {
		w.kept = w.kept[:0:0] // let the backing array go too
	}
}

// take makes pending what ep acknowledged within the window, and returns
// how many batches that is.
func (w *window) take(ep *endpoint) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, keep := 0, w.kept[:0]
	for _, k := range w.kept {
		if k.ep == ep {
			w.pending = append(w.pending, k)
			n += k.n
			continue
		}
		keep = append(keep, k)
	}
	clear(w.kept[len(keep):])
	w.kept = keep
	if n > 0 {
		select {
		case w.ready <- struct{}{}:
		default:
		}
	}
	return n
}

// popPending removes and returns the oldest pending entry.
func (w *window) popPending() (kept, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return kept{}, false
	}
	k := w.pending[0]
	w.pending[0] = kept{}
	w.pending = w.pending[1:]
	w.bytes -= k.size
	w.batches -= k.n
	return k, true
}

// unpop puts k back in front of the pending entries.
func (w *window) unpop(k kept) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append([]kept{k}, w.pending...)
	w.bytes += k.size
	w.batches += k.n
}

// pendingLen returns the number of pending entries.
func (w *window) pendingLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// oldestSpooled returns the lowest sequence number of the spooled records
// kept or pending, which must stay in the spool.
func (w *window) oldestSpooled() (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var low uint64
	found := false
	for _, ks := range [2][]kept{w.kept, w.pending} {
		for _, k := range ks {
			if k.batch == nil && (!found || k.from.Seq() < low) {
				low, found = k.from.Seq(), true
			}
		}
	}
	return low, found
}

// nextExpiry returns how long until the oldest kept entry leaves the
// window at now, and false when nothing is kept.
func (w *window) nextExpiry(now time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.kept) == 0 {
		return 0, false
	}
	return max(w.kept[0].at.Add(w.span).Sub(now), 0), true
}
