// Package emit turns generator readings into lines of the Prometheus text
// exposition format, with timestamps, into pooled buffers, and remembers the
// last value of every series so that only changed series are written between
// full refreshes.
//
// A Scan is used by one goroutine at a time. Pool and Sink implementations
// are safe for concurrent use.
package emit

import (
	"context"
	"sync/atomic"
)

// BufferSize is the capacity of a pooled buffer. A scan hands a buffer to
// its Sink once it holds more than BufferSize-FlushMargin bytes, so that a
// line never makes the buffer grow in the common case.
//
// 16 KiB: a pooled buffer lives as long as the agent once made, and at
// most about 11 are made (two workers' scans, the compressor's input
// channel of 8, the one being compressed), whatever scheduler.buffers
// allows; 64 KiB buffers held 704 KB of a standalone agent's 4.7 MB of
// live heap (docs/performance.md). A scan of the default config fills a
// few more of them per second, each one more channel send.
const (
	BufferSize  = 16 << 10
	FlushMargin = 4 << 10
)

// Buffer holds complete lines of text exposition format. B never ends in the
// middle of a line.
type Buffer struct {
	B []byte
}

// Pool is a bounded pool of buffers: at most n buffers exist at once, so a
// stalled pipeline stops its generators instead of growing without bound.
type Pool struct {
	free  chan *Buffer
	made  atomic.Int64
	limit int64
	waits atomic.Uint64
}

// NewPool returns a pool that hands out at most n buffers (n >= 1).
func NewPool(n int) *Pool {
	if n < 1 {
		n = 1
	}
	return &Pool{free: make(chan *Buffer, n), limit: int64(n)}
}

// Get returns an empty buffer. It blocks while all buffers are in use, until
// one is put back or ctx is done.
func (p *Pool) Get(ctx context.Context) (*Buffer, error) {
	select {
	case b := <-p.free:
		return b, nil
	default:
	}
	if p.made.Add(1) <= p.limit {
		return &Buffer{B: make([]byte, 0, BufferSize)}, nil
	}
	p.made.Add(-1)
	p.waits.Add(1)
	select {
	case b := <-p.free:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put returns b to the pool. Buffers that grew far past BufferSize (one huge
// line) are replaced so that the pool's memory stays bounded.
func (p *Pool) Put(b *Buffer) {
	if cap(b.B) > 4*BufferSize {
		b.B = make([]byte, 0, BufferSize)
	}
	b.B = b.B[:0]
	select {
	case p.free <- b:
	default:
		// More Puts than Gets: a foreign buffer. Drop it.
	}
}

// InUse reports how many buffers are handed out right now.
func (p *Pool) InUse() int {
	return int(p.made.Load()) - len(p.free)
}

// Waits reports how many Gets had to wait for a buffer.
func (p *Pool) Waits() uint64 { return p.waits.Load() }

// Sink receives filled buffers. Send takes ownership of b; it may block
// (backpressure) and must give b back to its Pool once done with it.
type Sink interface {
	Send(ctx context.Context, b *Buffer) error
}

// Flusher is a Sink that batches: Idle tells it that every scan due has
// finished and that what it was sent before may leave now. A Sink that
// does not batch need not implement it.
type Flusher interface {
	Idle(ctx context.Context) error
}
