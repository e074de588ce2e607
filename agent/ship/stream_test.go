package ship

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestStreamRealVictoriaMetrics streams batches to the pinned
// VictoriaMetrics in one request and reads each back while the request is
// still open: VictoriaMetrics parses a streamed zstd or gzip body as it
// arrives.
func TestStreamRealVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	for _, enc := range []string{config.StreamZstd, config.StreamGzip} {
		t.Run(enc, func(t *testing.T) { streamToVM(t, vm, enc) })
	}
}

func streamToVM(t *testing.T, vm *testenv.VM, enc string) {
	set := metrics.NewSet()
	cfg := testConfig(vm.ImportURL)
	cfg.StreamFor = config.Duration(2 * time.Minute)
	cfg.StreamEncoding = enc
	s := newShipper(t, cfg, Deps{Metrics: set})
	stop := run(t, s)

	ts := time.Now().UnixMilli()
	sample := func(i int) string {
		return fmt.Sprintf("procfleet_stream_test{enc=%q,i=\"%d\"} %d %d\n", enc, i, i, ts+int64(i)*1000)
	}
	// The first batch goes alone: its answer says VictoriaMetrics.
	s.Enqueue(batch(t, sample(0)))
	waitFor(t, "the first batch", 10*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_requests_total{endpoint="`+vm.ImportURL+`",status="204"}`) == 1
	})
	for i := 1; i <= 4; i++ {
		b := batch(t, sample(i))
		if i == 4 {
			b = zstdBatch(t, sample(i)) // compress.encoding zstd: decoded into the stream alike
		}
		s.Enqueue(b)
		waitFor(t, fmt.Sprintf("batch %d queryable while its stream is open", i), 15*time.Second, func() bool {
			vm.Flush(t)
			got, err := vm.TryExport(fmt.Sprintf(`procfleet_stream_test{enc=%q,i="%d"}`, enc, i))
			return err == nil && len(got) == 1 && len(got[0].Values) == 1 && got[0].Values[0] == float64(i)
		})
		if open, ended := metricValue(t, set, "procfleet_ship_streams_total"),
			metricValue(t, set, `procfleet_ship_streams_ended_total{result="delivered"}`); open != 1 || ended != 0 {
			t.Fatalf("after batch %d: %v streams opened, %v ended; want 1 open", i, open, ended)
		}
	}
	// A scraper's batch (its own labels, another target) goes beside the
	// stream, which stays open.
	own := batch(t, sample(9))
	own.OwnLabels = true
	s.Enqueue(own)
	waitFor(t, "the scraper's batch", 15*time.Second, func() bool {
		vm.Flush(t)
		got, err := vm.TryExport(fmt.Sprintf(`procfleet_stream_test{enc=%q,i="9"}`, enc))
		return err == nil && len(got) == 1
	})
	if open, ended := metricValue(t, set, "procfleet_ship_streams_total"),
		metricValue(t, set, `procfleet_ship_streams_ended_total{result="delivered"}`); open != 1 || ended != 0 {
		t.Fatalf("after the scraper's batch: %v streams opened, %v ended; want 1 open", open, ended)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := metricValue(t, set, `procfleet_ship_streams_ended_total{result="delivered"}`); got != 1 {
		t.Fatalf("streams delivered = %v; want 1", got)
	}
	if got := metricValue(t, set, "procfleet_ship_stream_segments_total"); got != 4 {
		t.Fatalf("segments = %v; want 4", got)
	}
	if got := metricValue(t, set, `procfleet_ship_requests_total{endpoint="`+vm.ImportURL+`",status="204"}`); got != 3 {
		t.Fatalf("requests = %v; want 3 (the first and the scraper's alone, one streamed)", got)
	}
}

// vmLike answers as VictoriaMetrics does (X-Server-Hostname), so that the
// shipper streams to it.
func vmLike(w http.ResponseWriter) { w.Header().Set("X-Server-Hostname", "test") }

// decoder returns a reader of r's body as its Content-Encoding says.
func decoder(r *http.Request) (io.Reader, error) {
	if r.Header.Get("Content-Encoding") == "zstd" {
		return zstd.NewReader(r.Body, zstd.WithDecoderConcurrency(1))
	}
	return gzip.NewReader(r.Body)
}

// cutConn closes the connection of w at once, without an answer. (A
// handler's panic would first read the rest of a chunked body, which for
// a stream is its whole life.)
func cutConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// streamCutter is an upstream that answers as VictoriaMetrics does, reads
// each request line by line (skipping empty lines, as VictoriaMetrics
// does: a stream's keep-alive) and, when cutAfter is above 0, cuts the
// connection of the first streamed request once it has read cutAfter
// lines, without an answer; every other request it takes whole, recording
// its Content-Encoding and lines. Bodies that are not compressed are
// refused.
type streamCutter struct {
	cutAfter int

	mu      sync.Mutex
	cut     bool
	partial []string   // lines of the cut stream
	reqs    []recorded // each request answered 204
}

// recorded is a request a streamCutter answered 204.
type recorded struct {
	enc      string
	streamed bool
	lines    []string
}

func (c *streamCutter) fault(_ int, w http.ResponseWriter, r *http.Request) bool {
	vmLike(w)
	if r.Method != http.MethodPost {
		return false
	}
	enc := r.Header.Get("Content-Encoding")
	if enc != "gzip" && enc != "zstd" {
		http.Error(w, "want a compressed body, got Content-Encoding "+enc, http.StatusUnsupportedMediaType)
		return true
	}
	zr, err := decoder(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return true
	}
	c.mu.Lock()
	cutThis := c.cutAfter > 0 && !c.cut && r.ContentLength < 0
	c.cut = c.cut || cutThis
	c.mu.Unlock()
	var lines []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		lines = append(lines, sc.Text())
		if cutThis && len(lines) == c.cutAfter {
			c.mu.Lock()
			c.partial = lines
			c.mu.Unlock()
			cutConn(w)
			return true
		}
	}
	if err := sc.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return true
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, recorded{enc: enc, streamed: r.ContentLength < 0, lines: lines})
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return true
}

// state returns the lines of the cut stream and of each request taken.
func (c *streamCutter) state() (partial []string, taken [][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reqs {
		taken = append(taken, r.lines)
	}
	return slices.Clone(c.partial), taken
}

// taken returns the requests answered 204.
func (c *streamCutter) taken() []recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// TestStreamCutResent cuts a stream after its second batch: the shipper
// sends each batch of it again in a request of its own, identical, and the
// next batches go into a new stream; every batch arrives whole in a
// request answered 204, exactly once.
func TestStreamCutResent(t *testing.T) {
	c := &streamCutter{cutAfter: 2}
	up := newUpstream(t, c.fault)
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.StreamFor = config.Duration(2 * time.Second)
	cfg.RedeliverWindow = 0 // line 0 is not sent again when the stream is cut
	s := newShipper(t, cfg, Deps{Metrics: set})
	stop := run(t, s)

	s.Enqueue(batch(t, line(0)))
	waitFor(t, "the first batch", 5*time.Second, func() bool { _, taken := c.state(); return len(taken) == 1 })
	s.Enqueue(batch(t, line(1)))
	s.Enqueue(batch(t, line(2)))
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "the stream cut and its batches resent", 10*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_streams_ended_total{result="failed"}`) == 1 &&
			metricValue(t, set, "procfleet_ship_stream_resent_batches_total") >= 2
	})
	s.Enqueue(batch(t, line(4)))
	s.Enqueue(batch(t, line(5)))
	waitFor(t, "a second stream delivered", 10*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_streams_ended_total{result="delivered"}`) >= 1
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	partial, taken := c.state()
	if want := []string{strings.TrimSpace(line(1)), strings.TrimSpace(line(2))}; !slices.Equal(partial, want) {
		t.Fatalf("the cut stream carried %q; want %q", partial, want)
	}
	seen := map[string]int{}
	for _, req := range taken {
		for _, l := range req {
			seen[l]++
		}
	}
	for i := range 6 {
		if n := seen[strings.TrimSpace(line(i))]; n != 1 {
			t.Fatalf("line %d arrived %d times in requests answered 204 (%q); want once", i, n, taken)
		}
	}
	// The cut stream's batches came back one per request, as they were.
	var singles int
	for _, req := range taken {
		if len(req) == 1 && (req[0] == strings.TrimSpace(line(1)) || req[0] == strings.TrimSpace(line(2))) {
			singles++
		}
	}
	if singles != 2 {
		t.Fatalf("requests answered 204: %q; want line 1 and line 2 each alone", taken)
	}
	if st := stateOf(t, s, up.URL()); !st.Healthy {
		t.Fatalf("state %+v; want healthy", st)
	}
}

// TestStreamCutSpooled cuts a stream and keeps the upstream down
// afterwards: the stream's batches go to the spool, and once the upstream
// is back every one of them arrives.
func TestStreamCutSpooled(t *testing.T) {
	var mu sync.Mutex
	down, streamed := false, false
	var taken []string
	up := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		vmLike(w)
		mu.Lock()
		isDown := down
		mu.Unlock()
		if isDown {
			panic(http.ErrAbortHandler)
		}
		if r.Method != http.MethodPost {
			return false
		}
		zr, err := decoder(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return true
		}
		br := bufio.NewReader(zr)
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				lines = append(lines, strings.TrimSpace(l))
			}
			if r.ContentLength < 0 && len(lines) == 2 {
				mu.Lock()
				streamed, down = true, true // cut, and down from here
				mu.Unlock()
				cutConn(w)
				return true
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return true
			}
		}
		mu.Lock()
		taken = append(taken, lines...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	log := openSpool(t, t.TempDir(), spoolConfig())
	t.Cleanup(func() { _ = log.Close() })
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.StreamFor = config.Duration(time.Minute)
	cfg.FailuresToUnhealthy = 1
	cfg.RedeliverWindow = 0
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: log})
	stop := run(t, s)

	s.Enqueue(batch(t, line(0)))
	waitFor(t, "the first batch", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(taken) == 1 })
	s.Enqueue(batch(t, line(1)))
	s.Enqueue(batch(t, line(2)))
	waitFor(t, "the stream cut", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return streamed })
	// The shipper finds the connection gone when it writes the next
	// batch into it (or when stream_for ends).
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "the stream's batches and the next spooled", 10*time.Second, func() bool {
		return metricValue(t, set, "procfleet_ship_spooled_batches_total") == 3
	})
	if got := metricValue(t, set, "procfleet_ship_stream_resent_batches_total"); got != 3 {
		t.Fatalf("resent %v batches of the stream; want 3 (the third written before the cut was seen)", got)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, "the spool replayed", 10*time.Second, func() bool { return s.SpoolLen() == 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{strings.TrimSpace(line(0)), strings.TrimSpace(line(1)), strings.TrimSpace(line(2)), strings.TrimSpace(line(3))}
	if !slices.Equal(taken, want) {
		t.Fatalf("taken %q; want %q", taken, want)
	}
}
