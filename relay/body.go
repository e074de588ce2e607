package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
)

// Request bodies are read into chunks of memory before a request takes a
// slot to be checked, so that a slow client holds no slot, only the bytes
// it has sent. Every chunk is counted against the budget of
// import.max_inflight_bytes from the moment it is taken until the request
// is answered. Chunks grow from minChunk to maxChunk as a body arrives, so
// that a client holds about what it sent (at most twice, plus minChunk),
// and a large body is still read, checked and written to the log in a few
// dozen pieces, never copied into one buffer.
const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
	// chunkClasses is the number of chunk sizes, minChunk to maxChunk by
	// powers of two.
	chunkClasses = 9
	// budgetWait is how long a request whose body has not started waits
	// for budget before it gets 429.
	budgetWait = time.Second
)

// budget counts the bytes request bodies hold in memory. A request that
// holds nothing yet may wait for bytes (take); one that holds some only
// tries (tryTake), so that requests never wait on each other while
// holding bytes, and a spent budget ends in 429s rather than in a
// deadlock. Safe for concurrent use.
type budget struct {
	mu      sync.Mutex
	free    int64
	max     int64
	waiting int
	changed chan struct{} // closed and replaced when bytes come back to waiters
}

func newBudget(n int64) *budget {
	return &budget{free: n, max: n, changed: make(chan struct{})}
}

// tryTake takes n bytes if they are free.
func (b *budget) tryTake(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free < n {
		return false
	}
	b.free -= n
	return true
}

// take takes n bytes, waiting up to wait for them, or until ctx ends.
func (b *budget) take(ctx context.Context, n int64, wait time.Duration) bool {
	if b.tryTake(n) {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting++
	defer func() { b.waiting-- }()
	for b.free < n {
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			b.mu.Lock()
			return false
		case <-ctx.Done():
			b.mu.Lock()
			return false
		}
		b.mu.Lock()
	}
	b.free -= n
	return true
}

// give returns n bytes.
func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	if b.waiting > 0 {
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// inUse returns the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max - b.free
}

// chunkPool keeps chunks of each size for reuse. Its memory is bounded by
// the budget: a chunk is taken from the pool only once its bytes are
// taken from the budget, and idle ones go with garbage collection.
type chunkPool [chunkClasses]sync.Pool

// class returns the size class of a chunk of at most size bytes and at
// least min(size, minChunk): the smallest that holds size, or the largest.
func class(size int64) int {
	c := 0
	for c < chunkClasses-1 && int64(minChunk)<<c < size {
		c++
	}
	return c
}

func (p *chunkPool) get(c int) *[]byte {
	if b, ok := p[c].Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, minChunk<<c)
	return &b
}

func (p *chunkPool) put(b *[]byte) { p[class(int64(cap(*b)))].Put(b) }

// body is one request body held in chunks. It is used by one request at a
// time.
type body struct {
	budget *budget
	pool   *chunkPool
	chunks []*[]byte // filled in order; the last may have room
	held   int64     // bytes taken from the budget
	n      int64     // body bytes read
}

// parts returns the body's chunks as slices, in order.
func (b *body) parts() [][]byte {
	out := make([][]byte, len(b.chunks))
	for i, c := range b.chunks {
		out[i] = *c
	}
	return out
}

// release gives every chunk back to the pool and its bytes to the budget.
// The body must not be used afterwards.
func (b *body) release() {
	for _, c := range b.chunks {
		b.pool.put(c)
	}
	b.chunks = nil
	if b.held > 0 {
		b.budget.give(b.held)
		b.held = 0
	}
}

// grow adds an empty chunk for the next part of a body of length cl (-1
// when unknown). The first chunk of a body may wait for budget; later ones
// may not (see budget).
func (b *body) grow(ctx context.Context, cl int64) error {
	c := min(len(b.chunks), chunkClasses-1)
	if cl >= 0 {
		c = min(c, class(cl-b.n))
	}
	size := int64(minChunk) << c
	ok := false
	if b.held == 0 {
		ok = b.budget.take(ctx, size, budgetWait)
	} else {
		ok = b.budget.tryTake(size)
	}
	if !ok {
		if ctx.Err() != nil {
			return refuse(http.StatusServiceUnavailable, reasonRead, "client went away while waiting")
		}
		return refuse(http.StatusTooManyRequests, reasonBusy, "the bodies of other requests fill import.max_inflight_bytes (%s); retry",
			config.FormatBytes(b.budget.max))
	}
	b.held += size
	b.chunks = append(b.chunks, b.pool.get(c))
	return nil
}

// readBody reads the body of req, at most limit bytes, into chunks taken
// from the relay's budget. It returns a refusal for a body over limit
// (413), one not read by the read deadline (408), a spent budget (429) or
// a failed read (400). The caller releases the body.
func (r *Relay) readBody(req *http.Request, limit int64) (*body, error) {
	b := &body{budget: r.budget, pool: &r.chunks}
	cl := req.ContentLength
	for cl < 0 || b.n < cl {
		if len(b.chunks) == 0 || len(*b.last()) == cap(*b.last()) {
			if err := b.grow(req.Context(), cl); err != nil {
				b.release()
				return nil, err
			}
		}
		c := b.last()
		room := min(int64(cap(*c)-len(*c)), limit+1-b.n)
		k, err := req.Body.Read((*c)[len(*c) : len(*c)+int(room)])
		*c = (*c)[:len(*c)+k]
		b.n += int64(k)
		if b.n > limit {
			b.release()
			return nil, refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, "body is over import.max_body_bytes (%d)", limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.release()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, refuse(http.StatusRequestTimeout, reasonTimeout, "body not received within import.read_timeout (%s); %d bytes came", r.cfg.Import.ReadTimeout, b.n)
			}
			return nil, refuse(http.StatusBadRequest, reasonRead, "cannot read body: %v", err)
		}
	}
	return b, nil
}

func (b *body) last() *[]byte { return b.chunks[len(b.chunks)-1] }

// partsReader reads parts in order without changing them.
type partsReader struct {
	parts [][]byte
	i     int
	off   int
}

func (p *partsReader) Read(dst []byte) (int, error) {
	for p.i < len(p.parts) && p.off == len(p.parts[p.i]) {
		p.i, p.off = p.i+1, 0
	}
	if p.i == len(p.parts) {
		return 0, io.EOF
	}
	n := copy(dst, p.parts[p.i][p.off:])
	p.off += n
	return n, nil
}
