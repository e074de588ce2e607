package ship

import "sync"

// queue is a bounded FIFO of batches that drops its oldest entries when
// full (in number or in body bytes), so that a stalled upstream costs old
// data, never memory or a blocked producer. It is safe for concurrent use.
type queue struct {
	mu       sync.Mutex
	buf      []*Batch // ring
	head     int
	n        int
	bytes    int64         // of the bodies queued
	maxBytes int64         // 0: no bound
	ready    chan struct{} // one token: something was pushed
}

func newQueue(capacity int, maxBytes int64) *queue {
	return &queue{buf: make([]*Batch, max(capacity, 1)), maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// push appends b and returns the batches it dropped to make room, oldest
// first: while the queue is full, or b would take its bodies past
// maxBytes. b itself is always queued.
func (q *queue) push(b *Batch) (dropped []*Batch) {
	q.mu.Lock()
	for q.n == len(q.buf) || q.n > 0 && q.maxBytes > 0 && q.bytes+int64(len(b.Body)) > q.maxBytes {
		dropped = append(dropped, q.buf[q.head])
		q.bytes -= int64(len(q.buf[q.head].Body))
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = b
	q.n++
	q.bytes += int64(len(b.Body))
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
	q.bytes -= int64(len(b.Body))
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
	q.head, q.n, q.bytes = 0, 0, 0
	return n
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// size returns the bytes of the bodies queued.
func (q *queue) size() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
