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
// waiting, as the body and sample limits already bound it. The budget
// does not pace the reading of a body: a scrape that was let in reads and
// parses at the parser's pace, as before.
type budget struct {
	limit int64

	mu      sync.Mutex
	used    int64
	waiters int
	freed   chan struct{} // closed, and replaced, when bytes are given back
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes once the bytes taken are under the limit; when
// it has to wait for that, it calls onWait (if not nil) first, once. It
// returns false, having taken nothing, when ctx is done or stop is closed
// first.
func (b *budget) acquire(ctx context.Context, stop <-chan struct{}, n int64, onWait func()) bool {
	b.mu.Lock()
	for waited := false; b.used >= b.limit; waited = true {
		if !waited && onWait != nil {
			onWait()
		}
		ch := b.freed
		b.waiters++
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			b.leave()
			return false
		case <-stop:
			b.leave()
			return false
		}
		b.mu.Lock()
		b.waiters--
	}
	b.used += n
	b.mu.Unlock()
	return true
}

func (b *budget) leave() {
	b.mu.Lock()
	b.waiters--
	b.mu.Unlock()
}

// grow takes n more bytes without waiting.
func (b *budget) grow(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// release gives n bytes back and wakes the scrapes waiting.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.waiters > 0 && b.used < b.limit {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// inUse reports the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
