package emit

import (
	"bytes"
	"context"
	"sync"
)

// Generator reads one /proc source and writes its series to a Scan.
//
// Collect is called by one goroutine at a time, never concurrently for the
// same Generator. It writes what it could read and returns an error that
// says what was wrong and where (file, line) when the source was missing,
// unreadable or malformed; the scheduler counts and logs the error and calls
// Collect again on the next cycle, so a generator is never disabled for good.
type Generator interface {
	// Name is the generator's name as the config and self-metrics know it.
	Name() string
	Collect(s *Scan) error
}

// MemSink is a Sink that keeps everything sent to it in memory. It serves the
// scan command and tests. It is safe for concurrent use.
type MemSink struct {
	Pool *Pool

	mu  sync.Mutex
	buf bytes.Buffer
}

// Send appends b's lines and returns b to the pool.
func (m *MemSink) Send(_ context.Context, b *Buffer) error {
	m.mu.Lock()
	m.buf.Write(b.B)
	m.mu.Unlock()
	m.Pool.Put(b)
	return nil
}

// Take returns everything sent so far and forgets it.
func (m *MemSink) Take() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := bytes.Clone(m.buf.Bytes())
	m.buf.Reset()
	return out
}

// Collect runs g once, without a tracker and without timestamps, and returns
// its lines. It is meant for tests and one-off scans.
func Collect(g Generator) ([]byte, error) {
	pool := NewPool(4)
	sink := &MemSink{Pool: pool}
	s := NewScan(pool, sink, nil)
	s.Start(context.Background(), 0)
	err := g.Collect(s)
	if ferr := s.Finish(); err == nil {
		err = ferr
	}
	return sink.Take(), err
}
