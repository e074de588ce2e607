package compress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

type collector struct {
	mu      sync.Mutex
	batches []Batch
}

func (c *collector) out(b Batch) {
	c.mu.Lock()
	c.batches = append(c.batches, b)
	c.mu.Unlock()
}

func (c *collector) text(t *testing.T) (string, int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var all strings.Builder
	samples := 0
	for _, b := range c.batches {
		raw, err := decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != b.RawBytes {
			t.Fatalf("batch says %d raw bytes, holds %d", b.RawBytes, len(raw))
		}
		all.Write(raw)
		samples += b.Samples
	}
	return all.String(), samples
}

// decode returns the text of b, gzip or zstd as b says.
func decode(b Batch) ([]byte, error) {
	if b.Text {
		return b.Body, nil
	}
	if b.Zstd {
		zd, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer zd.Close()
		return zd.DecodeAll(b.Body, nil)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.Body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func start(t *testing.T, cfg config.Compress) (*Compressor, *emit.Pool, *collector, context.CancelFunc, chan struct{}) {
	t.Helper()
	pool := emit.NewPool(8)
	col := &collector{}
	c, err := New(cfg, pool, col.out, metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	return c, pool, col, cancel, done
}

func send(t *testing.T, c *Compressor, pool *emit.Pool, text string) {
	t.Helper()
	b, err := pool.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.B = append(b.B, text...)
	if err := c.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestCompressorFlushesBySizeAndOnStop(t *testing.T) {
	for _, enc := range []string{config.EncodingGzip, config.EncodingZstd} {
		t.Run(enc, func(t *testing.T) { testFlushesBySizeAndOnStop(t, enc) })
	}
}

func testFlushesBySizeAndOnStop(t *testing.T, enc string) {
	cfg := config.Compress{Encoding: enc, Level: 5, TargetBytes: 8 << 10, FlushAge: config.Duration(time.Minute)}
	c, pool, col, cancel, done := start(t, cfg)
	rng := rand.New(rand.NewSource(1))
	var want strings.Builder
	for i := 0; i < 400; i++ {
		var chunk strings.Builder
		for j := 0; j < 50; j++ {
			fmt.Fprintf(&chunk, "m{i=\"%d\"} %d 1700000000000\n", i*50+j, rng.Int63())
		}
		want.WriteString(chunk.String())
		send(t, c, pool, chunk.String())
	}
	cancel()
	<-done
	got, samples := col.text(t)
	if got != want.String() {
		t.Fatalf("decompressed text differs from input (%d vs %d bytes)", len(got), want.Len())
	}
	if samples != 20000 {
		t.Fatalf("batches count %d samples, want 20000", samples)
	}
	if len(col.batches) < 10 {
		t.Fatalf("only %d batches for ~600KiB of random text at an 8KiB target", len(col.batches))
	}
	for i, b := range col.batches {
		if b.Zstd != (enc == config.EncodingZstd) {
			t.Fatalf("encoding %s: batch %d has Zstd %v", enc, i, b.Zstd)
		}
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers not returned to the pool", pool.InUse())
	}
}

func TestCompressorFlushesByAge(t *testing.T) {
	cfg := config.Compress{Level: 1, TargetBytes: 1 << 20, FlushAge: config.Duration(50 * time.Millisecond)}
	c, pool, col, cancel, done := start(t, cfg)
	defer func() { cancel(); <-done }()
	send(t, c, pool, "up 1\n")
	deadline := time.Now().Add(2 * time.Second)
	for {
		col.mu.Lock()
		n := len(col.batches)
		col.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a small batch was not flushed by age within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, _ := col.text(t); got != "up 1\n" {
		t.Fatalf("batch holds %q", got)
	}
}

func TestCompressorRejectsBadConfig(t *testing.T) {
	_, err := New(config.Compress{Level: 12, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Second)}, emit.NewPool(1), func(Batch) {}, metrics.NewSet())
	if err == nil || !strings.Contains(err.Error(), "compress.level") {
		t.Fatalf("level 12 accepted or error does not name the key: %v", err)
	}
	_, err = New(config.Compress{Encoding: "br", Level: 5, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Second)}, emit.NewPool(1), func(Batch) {}, metrics.NewSet())
	if err == nil || !strings.Contains(err.Error(), `compress.encoding: "br" is not accepted; want gzip or zstd`) {
		t.Fatalf("encoding br accepted or error does not name the key: %v", err)
	}
}

func TestCompressorSetConfig(t *testing.T) {
	cfg := config.Compress{Level: 5, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Minute)}
	c, pool, col, cancel, done := start(t, cfg)
	defer func() { cancel(); <-done }()
	if err := c.SetConfig(config.Compress{Level: 0}); err == nil {
		t.Fatal("SetConfig accepted level 0")
	}
	send(t, c, pool, "a 1\n") // a batch that waits for its minute
	if err := c.SetConfig(config.Compress{Level: 1, TargetBytes: 1 << 20, FlushAge: config.Duration(20 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	// The new flush age applies to the batch already open.
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; ; i++ {
		col.mu.Lock()
		n := len(col.batches)
		col.mu.Unlock()
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running batch kept the old flush age of a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Idle flushes what was sent before it, at once, but not within
// min_flush_interval of the previous flush; flush_age still bounds the wait.
func TestCompressorFlushesWhenIdle(t *testing.T) {
	cfg := config.Compress{Level: 1, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Minute), MinFlushInterval: config.Duration(300 * time.Millisecond)}
	c, pool, col, cancel, done := start(t, cfg)
	defer func() { cancel(); <-done }()
	batches := func() int {
		col.mu.Lock()
		defer col.mu.Unlock()
		return len(col.batches)
	}
	waitFor := func(n int, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for batches() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d batches after %v, want %d", what, batches(), within, n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	ctx := context.Background()
	send(t, c, pool, "a 1\n")
	send(t, c, pool, "b 1\n")
	if err := c.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(1, time.Second, "first idle point")
	if got, _ := col.text(t); got != "a 1\nb 1\n" {
		t.Fatalf("first batch holds %q, want both lines sent before Idle", got)
	}
	// Within min_flush_interval of that flush, an idle point keeps the batch.
	start := time.Now()
	send(t, c, pool, "a 2\n")
	if err := c.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := batches(); n != 1 {
		t.Fatalf("an idle point within min_flush_interval (300ms) of the last flush flushed: %d batches", n)
	}
	time.Sleep(time.Until(start.Add(350 * time.Millisecond)))
	if err := c.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(2, time.Second, "idle point past min_flush_interval")
	// An idle point with nothing pending flushes nothing.
	if err := c.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := batches(); n != 2 {
		t.Fatalf("an idle point with nothing pending made a batch: %d batches", n)
	}
	cancel()
	<-done
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers not returned to the pool", pool.InUse())
	}
}

// An encoding set while a batch is open applies from the next batch: the
// open one stays one gzip member.
func TestCompressorSetEncoding(t *testing.T) {
	cfg := config.Compress{Level: 5, TargetBytes: 1 << 20, FlushAge: config.Duration(time.Minute)}
	pool := emit.NewPool(4)
	col := &collector{}
	c, err := New(cfg, pool, col.out, metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	add := adder(t, c, pool)
	add("a 1\n")
	zcfg := cfg
	zcfg.Encoding = config.EncodingZstd
	if err := c.SetConfig(zcfg); err != nil {
		t.Fatal(err)
	}
	if !c.applyNext() {
		t.Fatal("the new config was not taken")
	}
	add("b 1\n")
	c.flush(c.flushIdle)
	add("c 1\n")
	c.flush(c.flushStop)
	if len(col.batches) != 2 || col.batches[0].Zstd || !col.batches[1].Zstd {
		t.Fatalf("batches %+v; want a gzip one, then a zstd one", col.batches)
	}
	if got, _ := col.text(t); got != "a 1\nb 1\nc 1\n" {
		t.Fatalf("batches hold %q", got)
	}
}

// While the receiver wants text, batches are its plain text, decided at
// the start of each batch; a body given back is used again; a text batch
// flushes at TargetBytes times textFactor.
func TestCompressorText(t *testing.T) {
	cfg := config.Compress{Level: 5, TargetBytes: 4 << 10, FlushAge: config.Duration(time.Minute)}
	pool := emit.NewPool(4)
	col := &collector{}
	set := metrics.NewSet()
	c, err := New(cfg, pool, col.out, set)
	if err != nil {
		t.Fatal(err)
	}
	var want atomic.Bool
	c.SetTextWanted(want.Load)
	add := adder(t, c, pool)
	add("a 1\n")
	want.Store(true) // within a batch: the next one
	add("b 1\n")
	c.flush(c.flushIdle)
	add("c 1\n")
	add("d 1\n")
	want.Store(false)
	c.flush(c.flushIdle)
	if len(col.batches) != 2 || col.batches[0].Text || !col.batches[1].Text {
		t.Fatalf("batches %+v; want a gzip one, then a text one", col.batches)
	}
	if b := col.batches[1]; string(b.Body) != "c 1\nd 1\n" || b.Samples != 2 || b.RawBytes != 8 {
		t.Fatalf("text batch %q, %d samples, %d raw bytes; want \"c 1\\nd 1\\n\", 2, 8", b.Body, b.Samples, b.RawBytes)
	}
	add("e 1\n")
	c.flush(c.flushIdle)
	if b := col.batches[2]; b.Text {
		t.Fatal("a batch started while text was not wanted came as text")
	}
	// A body given back carries the next text batch.
	want.Store(true)
	given := make([]byte, 0, 64<<10)
	c.PutText(given)
	add("f 1\n")
	c.flush(c.flushIdle)
	if b := col.batches[3]; !b.Text || &b.Body[:1][0] != &given[:1][0] {
		t.Fatal("the text batch was not made in the body given back")
	}
	// Size: TargetBytes times textFactor of text, not of compressed bytes.
	line := strings.Repeat("x", 100) + " 1\n"
	n := 0
	for len(col.batches) == 4 {
		add(line)
		n += len(line)
		if n > 2*textFactor*int(cfg.TargetBytes) {
			t.Fatalf("no flush after %d bytes of text", n)
		}
	}
	if n < textFactor*int(cfg.TargetBytes) {
		t.Fatalf("a text batch flushed by size at %d bytes; want at least %d", n, textFactor*int(cfg.TargetBytes))
	}
	if got, _ := col.text(t); !strings.HasPrefix(got, "a 1\nb 1\nc 1\nd 1\ne 1\nf 1\n") {
		t.Fatalf("batches hold %q...", got[:40])
	}
	if v := testenv.MetricValue(t, set, "procfleet_compress_text_batches_total"); v != 3 {
		t.Fatalf("text batches counted %v; want 3", v)
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d buffers not returned to the pool", pool.InUse())
	}
}

// adder returns a func that hands text to c as Run does, without its
// goroutine.
func adder(t *testing.T, c *Compressor, pool *emit.Pool) func(string) {
	return func(text string) {
		b, err := pool.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b.B = append(b.B, text...)
		c.add(b)
	}
}
