package relay

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// Chunks never take more than the budget, idle ones included: an idle
// chunk is reused for its size and dropped to make room for another size;
// a get that finds no room fails at once without a wait, and with one it
// takes the first chunk given back.
func TestMemory(t *testing.T) {
	m := newMemory(16 << 10)
	ctx := context.Background()
	a := m.get(ctx, 1, 0) // 8 KiB
	b := m.get(ctx, 1, 0)
	if a == nil || b == nil || cap(*a) != 8<<10 || m.inUse() != 16<<10 {
		t.Fatalf("two 8KiB chunks of 16KiB: %v %v, in use %d", a, b, m.inUse())
	}
	if c := m.get(ctx, 0, 0); c != nil {
		t.Fatal("a 4KiB chunk beyond the budget was given")
	}
	*a = append(*a, "used"...)
	m.put(a)
	if m.inUse() != 8<<10 {
		t.Fatalf("in use after a put = %d; want 8KiB", m.inUse())
	}
	again := m.get(ctx, 1, 0)
	if again != a || len(*again) != 0 {
		t.Fatal("the idle 8KiB chunk was not reused, empty")
	}
	m.put(again)
	// 8 KiB idle, 8 KiB in use: two 4 KiB chunks need the idle one dropped.
	c, d := m.get(ctx, 0, 0), m.get(ctx, 0, 0)
	if c == nil || d == nil || m.inUse() != 16<<10 || m.idleN != 0 {
		t.Fatalf("4KiB chunks in place of an idle 8KiB one: %v %v, in use %d, idle %d", c, d, m.inUse(), m.idleN)
	}
	start := time.Now()
	if e := m.get(ctx, 0, 50*time.Millisecond); e != nil || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("a get with a 50ms wait and no room returned %v after %s; want nil after the wait", e, time.Since(start))
	}
	got := make(chan *[]byte)
	go func() { got <- m.get(ctx, 0, time.Minute) }()
	waitFor(t, "the get waiting", 5*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.waiting == 1
	})
	m.put(c)
	if e := <-got; e != c {
		t.Fatal("the waiting get did not take the chunk given back")
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- m.get(cctx, 0, time.Minute) }()
	waitFor(t, "the get waiting", 5*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.waiting == 1
	})
	cancel()
	if e := <-got; e != nil {
		t.Fatal("a get whose context ended returned a chunk")
	}
}

// Chunk sizes follow the body: 4KiB doubling to 1MiB, never more than
// what is left of a body of known length.
func TestChunkClasses(t *testing.T) {
	for _, c := range []struct {
		size int64
		want int
	}{{0, 0}, {1, 0}, {4 << 10, 0}, {4<<10 + 1, 1}, {1 << 20, 8}, {1 << 30, 8}} {
		if got := class(c.size); got != c.want {
			t.Errorf("class(%d) = %d; want %d", c.size, got, c.want)
		}
	}
}

// partsReader reads the parts in order, skipping empty ones, and leaves
// them as they were.
func TestPartsReader(t *testing.T) {
	parts := [][]byte{{}, []byte("abc"), {}, []byte("defgh"), []byte("i")}
	if err := iotest.TestReader(&partsReader{parts: parts}, []byte("abcdefghi")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(&partsReader{parts: parts})
	if !bytes.Equal(got, []byte("abcdefghi")) || string(parts[1]) != "abc" {
		t.Fatalf("read %q, parts now %q", got, parts)
	}
}
