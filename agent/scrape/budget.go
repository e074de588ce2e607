package scrape

import (
	"context"
	"sync"
)

// budget bounds the bytes of scrape output that exist at once: the lines a
// scrape writes between its request and their delivery into the
// pipeline's buffers. A scrape takes its expected size (what the target's
// last scrape wrote) before it sends its request and gives it back once
// its lines are delivered. When the pipeline falls behind (a loaded CPU,
// a compressor that cannot keep up), the scrapes due wait here, before
// they read anything, instead of each holding a parsed output while it
// waits for buffers: a thousand targets of 1,000 series then hold what the
// budget allows, not 150 MB.
//
// A scrape is let in while the bytes taken are under the limit, whatever
// its own size, so that a target larger than the whole budget is still
// scraped; what it writes beyond its estimate is counted (grow) without
// waiting, as the body and sample limits already bound it. Waiting scrapes
// are let in first come, first served, and only as many as the bytes given
// back make room for: a release wakes no scrape that would have to wait
// again. The budget does not pace the reading of a body: a scrape that was
// let in reads and parses at the parser's pace, as before.
type budget struct {
	limit int64

	mu    sync.Mutex
	used  int64
	queue []*waiter // first come, first served
}

// waiter is a scrape waiting for bytes; ready is closed once they are
// taken for it.
type waiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit}
}

// acquire takes n bytes once the bytes taken are under the limit and the
// scrapes that came first were let in; when it has to wait for that, it
// calls onWait (if not nil) first. It returns false, having taken nothing,
// when ctx is done or stop is closed first.
func (b *budget) acquire(ctx context.Context, stop <-chan struct{}, n int64, onWait func()) bool {
	b.mu.Lock()
	if b.used < b.limit && len(b.queue) == 0 {
		b.used += n
		b.mu.Unlock()
		return true
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	if onWait != nil {
		onWait()
	}
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		// Let in meanwhile: give the bytes back.
		b.used -= n
		b.admit()
	default:
		for i, q := range b.queue {
			if q == w {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
	}
	return false
}

// admit lets in the waiting scrapes, in their order, while the bytes taken
// are under the limit. b.mu is held.
func (b *budget) admit() {
	for len(b.queue) > 0 && b.used < b.limit {
		w := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.used += w.n
		close(w.ready)
	}
}

// grow takes n more bytes without waiting.
func (b *budget) grow(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// release gives n bytes back and lets in the scrapes they make room for.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.admit()
	b.mu.Unlock()
}

// inUse reports the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// waiting reports the scrapes waiting.
func (b *budget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}
