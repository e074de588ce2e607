package ship

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"github.com/procfleet/procfleet/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

func TestStallFailsOver(t *testing.T) {
	// Probes stall too: a probe answered OK would make the endpoint
	// healthy again before the test looks.
	stall := newUpstream(t, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		// Read the body so that the server notices the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select { // past the response timeout
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	})
	good := newUpstream(t, nil)
	cfg := testConfig(stall.URL(), good.URL())
	cfg.Timeouts.Response = config.Duration(200 * time.Millisecond)
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	start := time.Now()
	for i := range 4 {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "4 batches on the good upstream", 5*time.Second, func() bool { return len(good.received()) == 4 })
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("failover took %s", el)
	}
	st := stateOf(t, s, stall.URL())
	if st.Healthy || !strings.Contains(st.LastError, "timeout") {
		t.Fatalf("stalled endpoint state = %+v; want unhealthy after a timeout", st)
	}
}

// tcpStall accepts connections and never reads or answers.
func tcpStall(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/api/v1/import/prometheus"
}

func TestTCPStallTimesOut(t *testing.T) {
	f := func(name string, body []byte, send, response time.Duration, wantErr string, failover bool) {
		t.Helper()
		stall := tcpStall(t)
		good := newUpstream(t, nil)
		cfg := testConfig(stall)
		if failover {
			cfg.Upstreams = append(cfg.Upstreams, good.URL())
		}
		cfg.DrainTimeout = config.Duration(200 * time.Millisecond)
		cfg.Timeouts.Send = config.Duration(send)
		cfg.Timeouts.Response = config.Duration(response)
		cfg.FailuresToUnhealthy = 1
		s := newShipper(t, cfg, Deps{})
		stop := run(t, s)
		start := time.Now()
		s.Enqueue(&Batch{Body: body})
		waitFor(t, name+": stalled endpoint unhealthy", 5*time.Second, func() bool {
			return !stateOf(t, s, stall).Healthy
		})
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("%s: timing out took %s", name, el)
		}
		if st := stateOf(t, s, stall); !strings.Contains(st.LastError, wantErr) {
			t.Fatalf("%s: stalled endpoint state = %+v; want %q", name, st, wantErr)
		}
		if !failover {
			return
		}
		waitFor(t, name+": batch on the good upstream", 5*time.Second, func() bool { return len(good.received()) == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	// A small body fits the socket buffers: the response timeout fires.
	f("response", testenv.Gzip(t, line(1)), 10*time.Second, 300*time.Millisecond, "timeout awaiting response headers", true)
	// 16 MiB that nobody reads fill the socket buffers: the write stalls
	// and the send timeout fires. (No failover: under the race detector
	// no upstream takes 16 MiB within so short a send timeout.)
	f("send", storedGzip(t, 16<<20), 300*time.Millisecond, 10*time.Second, errSendTimeout.Error(), false)
}

// storedGzip returns a valid gzip stream of n random bytes, stored without
// compression so that it is as large as its content and quick to make.
func storedGzip(t *testing.T, n int) []byte {
	t.Helper()
	raw := make([]byte, n)
	_, _ = rand.Read(raw)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConnRefusedThenProbeBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	u := "http://" + addr + "/api/v1/import/prometheus"
	set := metrics.NewSet()
	cfg := testConfig(u)
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "unhealthy", 5*time.Second, func() bool { return !stateOf(t, s, u).Healthy })
	if got := metricValue(t, set, `procfleet_ship_endpoint_healthy{endpoint="`+u+`"}`); got != 0 {
		t.Fatalf("health gauge = %v; want 0", got)
	}
	if st := stateOf(t, s, u); !strings.Contains(st.LastError, "refused") {
		t.Fatalf("state = %+v; want connection refused", st)
	}

	// The upstream comes back on the same address.
	up := &upstream{}
	var ln2 net.Listener
	waitFor(t, "listen again on "+addr, 5*time.Second, func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	up.srv = httptest.NewUnstartedServer(up)
	_ = up.srv.Listener.Close()
	up.srv.Listener = ln2
	up.srv.Start()
	t.Cleanup(up.srv.Close)

	waitFor(t, "delivery after the probe", 5*time.Second, func() bool { return len(up.received()) == 1 })
	if st := stateOf(t, s, u); !st.Healthy || st.ConsecutiveFailures != 0 {
		t.Fatalf("state = %+v; want healthy", st)
	}
	if _, gets := up.counts(); gets < 1 {
		t.Fatalf("no GET /health probe seen")
	}
	if got := metricValue(t, set, `procfleet_ship_probes_total{endpoint="`+u+`",result="ok"}`); got < 1 {
		t.Fatalf("probes ok = %v", got)
	}
}

// While every endpoint is down the sender makes no request: it waits for a
// probe to bring one back, and the probes keep to ProbeInterval.
func TestAllDownNoSpin(t *testing.T) {
	var mu sync.Mutex
	down := true
	fault := func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
		return down
	}
	a := newUpstream(t, fault)
	b := newUpstream(t, fault)
	const interval = 100 * time.Millisecond
	cfg := testConfig(a.URL(), b.URL())
	cfg.ProbeInterval = config.Duration(interval)
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	for i := range 5 {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "both endpoints unhealthy", 10*time.Second, func() bool {
		return !stateOf(t, s, a.URL()).Healthy && !stateOf(t, s, b.URL()).Healthy
	})
	start := time.Now()
	var posts, gets [2]int
	for i, u := range []*upstream{a, b} {
		posts[i], gets[i] = u.counts()
		// FailuresToUnhealthy (2) failed posts made it unhealthy.
		if posts[i] > 2 {
			t.Errorf("%s: %d posts before it was unhealthy; want 2", u.URL(), posts[i])
		}
	}
	// Ten probes of each endpoint since: the probe loop ticked ten times,
	// and the sender, whose backoff is at most 50ms, woke up many times
	// with a batch in hand and nowhere to send it.
	const probes = 10
	waitFor(t, "10 probes of each endpoint", 20*time.Second, func() bool {
		_, ga := a.counts()
		_, gb := b.counts()
		return ga-gets[0] >= probes && gb-gets[1] >= probes
	})
	elapsed := time.Since(start)
	for i, u := range []*upstream{a, b} {
		p, g := u.counts()
		if p != posts[i] {
			t.Errorf("%s: %d posts while every endpoint was down; want none", u.URL(), p-posts[i])
		}
		// A ticker drops the ticks it cannot deliver: never more probes
		// than intervals, give or take the one in flight.
		if most := int(elapsed/interval) + 2; g-gets[i] > most {
			t.Errorf("%s: %d probes in %s; want at most %d at one per %s", u.URL(), g-gets[i], elapsed, most, interval)
		}
	}
	if n := s.QueueLen(); n != 4 {
		t.Fatalf("QueueLen = %d; want 4 (one batch held by the sender)", n)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, "5 batches", 5*time.Second, func() bool { return len(a.received())+len(b.received()) == 5 })
}
