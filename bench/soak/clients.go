package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const importPath = "/api/v1/import/prometheus"

// tokens rotates the relay's bearer tokens. The file always holds the
// token in use and the next one: at a rotation the clients switch to the
// next one (in the file for a whole period already), and a moment later the
// file is replaced, by rename as an operator's tooling would, with the new
// pair, which revokes the old token.
type tokens struct {
	path    string
	current atomic.Pointer[string]
	next    string
	n       int
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newTokens(dir string) (*tokens, error) {
	t := &tokens{path: filepath.Join(dir, "tokens"), next: newToken()}
	cur := newToken()
	t.current.Store(&cur)
	return t, t.write()
}

func (t *tokens) get() string { return *t.current.Load() }

func (t *tokens) write() error {
	tmp := t.path + ".new"
	content := "# soak: current and next\n" + t.get() + "\n" + t.next + "\n"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, t.path)
}

// rotate switches the clients to the next token, waits for requests
// that still carry the old one, and revokes it.
func (t *tokens) rotate(ctx context.Context) error {
	next := t.next
	t.current.Store(&next)
	t.next = newToken()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	t.n++
	return t.write()
}

// fastResults is what the fast agents saw. Safe for concurrent use.
type fastResults struct {
	mu        sync.Mutex
	latencies []time.Duration
	status    map[string]int
	acked     map[int][]int64 // timestamps acknowledged, by agent
	unacked   int             // bodies given up on
}

func newFastResults() *fastResults {
	return &fastResults{status: map[string]int{}, acked: map[int][]int64{}}
}

func (r *fastResults) record(d time.Duration, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies = append(r.latencies, d)
	r.status[status]++
}

// fastAgent pushes a gzip body of series samples, all at the tick's
// time, once a second, as an agent does, and tries a body again until it
// is taken or 30 s have passed.
type fastAgent struct {
	id, series int
	url        string
	tok        *tokens
	client     *http.Client
	res        *fastResults
}

func (a *fastAgent) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			ts := now.UnixMilli()
			a.deliver(ctx, a.body(n, ts), ts, now.Add(30*time.Second))
		}
	}
}

func (a *fastAgent) body(n int, ts int64) []byte {
	var plain bytes.Buffer
	for s := range a.series {
		fmt.Fprintf(&plain, "soak_sample{agent=\"%d\",s=\"%d\"} %d %d\n", a.id, s, n, ts)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(plain.Bytes())
	_ = zw.Close()
	return z.Bytes()
}

func (a *fastAgent) deliver(ctx context.Context, body []byte, ts int64, giveUp time.Time) {
	for {
		status := a.post(ctx, body)
		if status == "204" {
			a.res.mu.Lock()
			a.res.acked[a.id] = append(a.res.acked[a.id], ts)
			a.res.mu.Unlock()
			return
		}
		if ctx.Err() != nil {
			return // stopped: neither taken nor given up
		}
		if time.Now().After(giveUp) {
			a.res.mu.Lock()
			a.res.unacked++
			a.res.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// post sends body once and records its latency and status ("error" when
// there was no answer).
func (a *fastAgent) post(ctx context.Context, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return "error"
	}
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+a.tok.get())
	start := time.Now()
	resp, err := a.client.Do(req)
	status := "error"
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = strconv.Itoa(resp.StatusCode)
	}
	if ctx.Err() == nil {
		a.res.record(time.Since(start), status)
	}
	return status
}

// slowResults is what the slow clients saw. Safe for concurrent use.
type slowResults struct {
	mu          sync.Mutex
	connections int
	status      map[string]int
}

// slowClient posts a body of announced length one byte a second, with a
// valid token, and starts again when the relay answers or drops it.
type slowClient struct {
	addr   string
	length int
	tok    *tokens
	res    *slowResults
}

func (c *slowClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		status := c.once(ctx)
		if ctx.Err() != nil {
			return
		}
		c.res.mu.Lock()
		c.res.connections++
		c.res.status[status]++
		c.res.mu.Unlock()
		if status == "error" {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// once makes one request and returns the status of its answer.
func (c *slowClient) once(ctx context.Context) string {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return "error"
	}
	defer conn.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", importPath, c.tok.get(), c.length)
	if _, err := conn.Write([]byte(head)); err != nil {
		return "error"
	}
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "error"
			return
		}
		resp.Body.Close()
		answered <- strconv.Itoa(resp.StatusCode)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-answered:
			return s
		case <-ctx.Done():
			conn.Close()
			<-answered
			return "stopped"
		case <-tick.C:
			_, _ = conn.Write([]byte("x"))
		}
	}
}

// percentile returns the q-quantile of d (nearest rank); d is sorted.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
