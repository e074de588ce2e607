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
// it has sent. Chunks, those requests hold and idle ones kept for reuse,
// never take more than import.max_inflight_bytes. They grow from 4KiB to
// 1MiB as a body arrives, so that a client holds about what it sent (at
// most twice, plus 4KiB), and a large body is still read, checked and
// written to the log in a few dozen pieces, never copied into one buffer.
const (
	minChunk = 4 << 10
	// chunkClasses is the number of chunk sizes, minChunk to 1MiB by
	// powers of two.
	chunkClasses = 9
	// budgetWait is how long a request whose body has not started waits
	// for budget before it gets 429.
	budgetWait = time.Second
)

// memory holds the chunks of request bodies: those taken by requests and
// idle ones kept for reuse, together never more than max bytes. A request
// that holds nothing yet may wait for a chunk (get with a wait); one that
// holds some may not, so that requests never wait on each other while
// holding memory, and a spent budget ends in 429s rather than in a
// deadlock. Idle chunks of one size are dropped to make room for another
// size. Safe for concurrent use.
type memory struct {
	mu      sync.Mutex
	max     int64
	used    int64 // bytes of the chunks requests hold
	idle    [chunkClasses][]*[]byte
	idleN   int64 // bytes of the idle chunks
	waiting int
	changed chan struct{} // closed and replaced when a chunk comes back to waiters
}

func newMemory(max int64) *memory {
	return &memory{max: max, changed: make(chan struct{})}
}

// get returns an empty chunk of size class c, waiting up to wait for the
// memory to be free, or until ctx ends; nil when it is not.
func (m *memory) get(ctx context.Context, c int, wait time.Duration) *[]byte {
	m.mu.Lock()
	b, ok := m.takeLocked(c)
	if !ok && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		m.waiting++
		for done := false; !ok && !done; {
			ch := m.changed
			m.mu.Unlock()
			select {
			case <-ch:
			case <-t.C:
				done = true
			case <-ctx.Done():
				done = true
			}
			m.mu.Lock()
			b, ok = m.takeLocked(c)
		}
		m.waiting--
	}
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if b == nil { // taken from the budget; made outside the lock
		nb := make([]byte, 0, minChunk<<c)
		b = &nb
	}
	return b
}

// takeLocked takes the bytes of a chunk of class c: an idle one, or room
// for a new one (nil, true), dropping idle chunks of other sizes for it.
func (m *memory) takeLocked(c int) (*[]byte, bool) {
	size := int64(minChunk) << c
	if n := len(m.idle[c]); n > 0 {
		b := m.idle[c][n-1]
		m.idle[c] = m.idle[c][:n-1]
		m.idleN -= size
		m.used += size
		*b = (*b)[:0]
		return b, true
	}
	if !m.roomLocked(size) {
		return nil, false
	}
	m.used += size
	return nil, true
}

// roomLocked drops idle chunks until size bytes more fit in the budget,
// and reports whether they do.
func (m *memory) roomLocked(size int64) bool {
	for m.used+m.idleN+size > m.max && m.idleN > 0 {
		for i := chunkClasses - 1; i >= 0; i-- {
			if n := len(m.idle[i]); n > 0 {
				m.idle[i][n-1] = nil
				m.idle[i] = m.idle[i][:n-1]
				m.idleN -= int64(minChunk) << i
				break
			}
		}
	}
	return m.used+m.idleN+size <= m.max
}

// reserve takes n bytes of the budget for memory that is not a chunk (a
// remote write body decompressed), without waiting, and reports whether
// it did. The caller gives them back with unreserve.
func (m *memory) reserve(n int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.roomLocked(n) {
		return false
	}
	m.used += n
	return true
}

// unreserve gives back n bytes taken with reserve.
func (m *memory) unreserve(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.used -= n
	if m.waiting > 0 {
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// put gives a chunk back.
func (m *memory) put(b *[]byte) {
	c := class(int64(cap(*b)))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.used -= int64(cap(*b))
	m.idle[c] = append(m.idle[c], b)
	m.idleN += int64(cap(*b))
	if m.waiting > 0 {
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// inUse returns the bytes of the chunks requests hold.
func (m *memory) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// class returns the size class of a chunk of at most size bytes and at
// least min(size, minChunk): the smallest that holds size, or the largest.
func class(size int64) int {
	c := 0
	for c < chunkClasses-1 && int64(minChunk)<<c < size {
		c++
	}
	return c
}

// body is one request body held in chunks. It is used by one request at a
// time.
type body struct {
	mem    *memory
	chunks []*[]byte // filled in order; the last may have room
	n      int64     // body bytes read
	// noWait is set for a body written while its request holds other
	// memory: its first chunk does not wait for the budget either.
	noWait bool
}

// parts returns the body's chunks as slices, in order.
func (b *body) parts() [][]byte {
	out := make([][]byte, len(b.chunks))
	for i, c := range b.chunks {
		out[i] = *c
	}
	return out
}

// release gives every chunk back. The body must not be used afterwards.
func (b *body) release() {
	for _, c := range b.chunks {
		b.mem.put(c)
	}
	b.chunks = nil
}

// grow adds an empty chunk for the next part of a body of length cl (-1
// when unknown). The first chunk of a body may wait for memory; later ones
// may not (see memory).
func (b *body) grow(ctx context.Context, cl int64) error {
	c := min(len(b.chunks), chunkClasses-1)
	if cl >= 0 {
		c = min(c, class(cl-b.n))
	}
	wait := time.Duration(0)
	if len(b.chunks) == 0 && !b.noWait {
		wait = budgetWait
	}
	chunk := b.mem.get(ctx, c, wait)
	if chunk == nil {
		if ctx.Err() != nil {
			return refuse(http.StatusServiceUnavailable, reasonRead, "client went away while waiting")
		}
		return refuse(http.StatusTooManyRequests, reasonBusy, "the bodies of other requests fill import.max_inflight_bytes (%s); retry",
			config.FormatBytes(b.mem.max))
	}
	b.chunks = append(b.chunks, chunk)
	return nil
}

// readBody reads the body of req, at most limit bytes, into chunks taken
// from the relay's budget. It returns a refusal for a body over limit
// (413), one not read by the read deadline (408), a spent budget (429) or
// a failed read (400). The caller releases the body.
func (r *Relay) readBody(req *http.Request, limit int64) (*body, error) {
	b := &body{mem: r.mem}
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

// held returns the bytes of the budget the body's chunks take.
func (b *body) held() int64 {
	n := 0
	for _, c := range b.chunks {
		n += cap(*c)
	}
	return int64(n)
}

// write appends p to the body, taking chunks of the budget as it fills.
func (b *body) write(ctx context.Context, p []byte) error {
	for len(p) > 0 {
		if len(b.chunks) == 0 || len(*b.last()) == cap(*b.last()) {
			if err := b.grow(ctx, -1); err != nil {
				return err
			}
		}
		c := b.last()
		k := copy((*c)[len(*c):cap(*c)], p)
		*c = (*c)[:len(*c)+k]
		b.n += int64(k)
		p = p[k:]
	}
	return nil
}

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
