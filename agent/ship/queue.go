package ship

import "sync"

// queue is a bounded FIFO of batches that drops its oldest entry when full,
// so that a stalled upstream costs old data, never memory or a blocked
// producer. It is safe for concurrent use.
type queue struct {
	mu    sync.Mutex
	buf   []*Batch // ring
	head  int
	n     int
	ready chan struct{} // one token: something was pushed
}

func newQueue(capacity int) *queue {
	return &queue{buf: make([]*Batch, max(capacity, 1)), ready: make(chan struct{}, 1)}
}

// push appends b and returns the batch it dropped to make room, if any.
func (q *queue) push(b *Batch) (dropped *Batch) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		dropped = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = b
	q.n++
	q.mu.Unlock()
	q.signal()
	return dropped
}

// signal puts the ready token back (or leaves it there).
func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop removes and returns the oldest batch, or nil when empty.
func (q *queue) pop() *Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	b := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return b
}

// clear removes every batch and returns how many there were.
func (q *queue) clear() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n
	for i := range q.buf {
		q.buf[i] = nil
	}
	q.head, q.n = 0, 0
	return n
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
