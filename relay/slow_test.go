package relay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

// slowClient is an import request whose body trickles in: its headers
// announce length bytes, then it sends one byte every interval (never, with
// interval 0, after the first few) until it is answered or stopped.
type slowClient struct {
	conn   net.Conn
	status chan int // the status of the answer, or 0 when there was none
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startSlowClient(t *testing.T, addr string, length int, first string, interval time.Duration) *slowClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &slowClient{conn: conn, status: make(chan int, 1), stop: make(chan struct{})}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n\r\n%s", ImportPath, length, first)
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			c.status <- 0
			return
		}
		resp.Body.Close()
		c.status <- resp.StatusCode
	}()
	go func() {
		defer c.wg.Done()
		if interval == 0 {
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *slowClient) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.conn.Close()
	c.wg.Wait()
}

// Slow clients hold no slot of import.max_concurrent: with more of them
// than slots, each sending a byte now and then, fast imports are answered
// while every slow one is still being read; the slow ones get 408 at
// import.read_timeout.
func TestSlowClientsDoNotBlockImports(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	cfg.Import.MaxConcurrent = 2
	cfg.Import.ReadTimeout = config.Duration(8 * time.Second)
	r := start(t, cfg)
	const slow = 8
	var clients []*slowClient
	for range slow {
		clients = append(clients, startSlowClient(t, r.Addr(), 1000, "slow_", 200*time.Millisecond))
	}
	// Each slow client has sent bytes and holds a chunk: it is being read.
	waitFor(t, "every slow client being read", 5*time.Second, func() bool {
		return r.metric(t, "procfleet_relay_inflight_bytes") >= slow*minChunk
	})
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range 5 {
		start := time.Now()
		code, msg := push(t, client, r.url, []byte(fmt.Sprintf("fast{i=\"%d\"} 1\n", i)))
		if code != http.StatusNoContent {
			t.Fatalf("fast import %d = %d %q; want 204", i, code, msg)
		}
		if n := r.metric(t, `procfleet_relay_rejected_total{reason="read_timeout"}`); n != 0 {
			t.Fatalf("fast import %d answered after %s, once %v slow clients had timed out: it waited for them", i, time.Since(start), n)
		}
	}
	if n := r.WAL().Len(); n != 5 {
		t.Fatalf("the log holds %d records; want the 5 fast imports", n)
	}
	for i, c := range clients {
		select {
		case code := <-c.status:
			if code != http.StatusRequestTimeout {
				t.Fatalf("slow client %d got %d; want 408", i, code)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("slow client %d not answered 30s after it started; want 408 at import.read_timeout", i)
		}
	}
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="read_timeout"}`); n != slow {
		t.Fatalf("read_timeout = %v; want %d", n, slow)
	}
	waitFor(t, "the slow clients' bytes given back", 5*time.Second, func() bool {
		return r.metric(t, "procfleet_relay_inflight_bytes") == 0
	})
}

// Bodies hold at most import.max_inflight_bytes, taken as they arrive:
// beside clients that sent most of it and stall, a body that fits is
// taken, one that grows past it gets 429 at once, and one that finds
// nothing left waits a second for its first bytes, then gets 429, with
// Retry-After; once the stalled clients are cut off at import.read_timeout,
// bodies are taken again.
func TestInflightBudget(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxInflightBytes = 64 << 10
	cfg.Import.ReadTimeout = config.Duration(10 * time.Second)
	r := start(t, cfg)
	busy := func(what string, body []byte, want float64) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s = %d, Retry-After %q; want 429 with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if n := r.metric(t, `procfleet_relay_rejected_total{reason="busy"}`); n != want {
			t.Fatalf("after %s, busy = %v; want %v", what, n, want)
		}
	}
	inflight := func(what string, want float64) {
		t.Helper()
		waitFor(t, what, 5*time.Second, func() bool { return r.metric(t, "procfleet_relay_inflight_bytes") == want })
	}
	// 30 KiB sent fill chunks of 4, 8 and 16 KiB and start one of 32 KiB:
	// 60 KiB held, 4 KiB left.
	a := startSlowClient(t, r.Addr(), 64<<10, strings.Repeat("x", 30<<10), 0)
	inflight("the first stalled body held", 60<<10)
	if code, msg := push(t, nil, r.url, []byte("small 1\n")); code != http.StatusNoContent {
		t.Fatalf("a small body beside the stalled one = %d %q; want 204", code, msg)
	}
	var big bytes.Buffer
	for i := 0; big.Len() < 8<<10; i++ {
		fmt.Fprintf(&big, "big{i=\"%d\"} 1\n", i)
	}
	busy("a body that outgrows the rest", big.Bytes(), 1)
	b := startSlowClient(t, r.Addr(), 64<<10, "y", 0)
	inflight("the second stalled body held", 64<<10)
	start := time.Now()
	busy("a body that finds nothing left", []byte("small 2\n"), 2)
	if waited := time.Since(start); waited < budgetWait*9/10 {
		t.Fatalf("refused after %s; want a wait of %s for the budget first", waited, budgetWait)
	}
	for _, c := range []*slowClient{a, b} {
		select {
		case code := <-c.status:
			if code != http.StatusRequestTimeout {
				t.Fatalf("stalled client got %d; want 408", code)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("stalled client not answered within 30s")
		}
	}
	inflight("the stalled bodies given back", 0)
	if code, msg := push(t, nil, r.url, big.Bytes()); code != http.StatusNoContent {
		t.Fatalf("the larger body once the stalled ones are cut off = %d %q; want 204", code, msg)
	}
}

// A body is read once into chunks and written from them to the log: an
// import allocates well under twice its body (before, it was read with
// io.ReadAll, which grows its buffer step by step, and copied whole into
// a record, and that record into the log's write buffer).
func TestImportDoesNotCopyBody(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	r := start(t, cfg)
	var b bytes.Buffer
	ts := time.Now().UnixMilli()
	for i := 0; b.Len() < 4<<20; i++ {
		fmt.Fprintf(&b, "copy_test{i=\"%d\"} %d %d\n", i, i, ts)
	}
	body := b.Bytes()
	client := &http.Client{}
	post := func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, r.url, bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("import = %d; want 204", resp.StatusCode)
		}
	}
	post() // warm up pools and connections
	const n = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		post()
	}
	runtime.ReadMemStats(&after)
	perImport := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.1f MiB allocated per import of a %.1f MiB body", perImport/(1<<20), float64(len(body))/(1<<20))
	if perImport > 1.5*float64(len(body)) {
		t.Fatalf("an import of %d bytes allocates %.0f bytes; want under 1.5 times the body", len(body), perImport)
	}
}
