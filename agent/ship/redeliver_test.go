package ship

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// down stops u's server: connections to its address are refused.
func (u *upstream) down() { u.srv.Close() }

// up starts u's server again on the address it had.
func (u *upstream) up(t *testing.T) {
	t.Helper()
	addr := u.srv.Listener.Addr().String()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(u)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	u.srv = srv
}

// resetConn answers every request by resetting its connection.
func resetConn(_ int, w http.ResponseWriter, _ *http.Request) bool {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
	return true
}

// stallAll answers no request until the client gives up.
func stallAll(_ int, _ http.ResponseWriter, r *http.Request) bool {
	// Read the body so that the server notices the client hanging up.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
	return true
}

// status answers POSTs with code and body, and probes with OK.
func status(code int, body string) func(int, http.ResponseWriter, *http.Request) bool {
	return func(_ int, w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
		return true
	}
}

// redeliverConfig sends to a first, b second, in that order.
func redeliverConfig(a, b *upstream) config.Ship {
	cfg := testConfig(a.URL(), b.URL())
	cfg.Strategy = config.StrategyOrdered
	// Long enough that an answer is never taken for a crash on a loaded
	// machine (-race, parallel packages); the stalled cases wait it out.
	cfg.Timeouts.Response = config.Duration(2 * time.Second)
	return cfg
}

// ackedByA sends batches 1 to n, all taken by a, and returns once the
// shipper has a's answers: a counts a batch before it answers, and a test
// that takes a down as soon as it counted them would lose an answer in
// flight (the batch sent again as unanswered, not as acknowledged).
func ackedByA(t *testing.T, s *Shipper, a *upstream, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "a took the first batches", 5*time.Second, func() bool { return len(a.received()) == n })
	waitAnswered(t, s, a, n)
}

// waitAnswered waits until the shipper has a's answers to n batches: with
// a redelivery window, until it kept them there.
func waitAnswered(t *testing.T, s *Shipper, a *upstream, n int) {
	t.Helper()
	answered := `procfleet_ship_requests_total{endpoint="` + a.URL() + `",status="204"}`
	waitFor(t, "the shipper has a's answers", 10*time.Second, func() bool {
		if s.win == nil {
			return metricValue(t, s.set, answered) >= float64(n)
		}
		s.win.mu.Lock()
		defer s.win.mu.Unlock()
		return s.win.batches >= n
	})
}

// An upstream that acknowledged batches and then becomes unreachable
// loses them: they go to the next upstream, before the new batch, and are
// counted. Without a window, or when the upstream answers its failure,
// only the new batch goes there.
func TestRedeliverOnUnreachable(t *testing.T) {
	f := func(name string, fault func(int, http.ResponseWriter, *http.Request) bool, window time.Duration, want []int) {
		t.Helper()
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		cfg := redeliverConfig(a, b)
		cfg.RedeliverWindow = config.Duration(window)
		set := metrics.NewSet()
		s := newShipper(t, cfg, Deps{Metrics: set})
		run(t, s)
		ackedByA(t, s, a, 3)
		if fault == nil {
			a.down()
		} else {
			a.setFault(fault)
		}
		s.Enqueue(batch(t, line(4)))
		waitFor(t, name+": batch 4 on b", 5*time.Second, func() bool { return slices.Contains(ids(b.received()), 4) })
		if got := ids(b.received()); !slices.Equal(got, want) {
			t.Fatalf("%s: b received lines %v; want %v", name, got, want)
		}
		wantCount := float64(len(want) - 1)
		if window == 0 {
			wantCount = 0
		}
		if got := metricValue(t, set, "procfleet_ship_redelivered_batches_total"); got != wantCount {
			t.Fatalf("%s: procfleet_ship_redelivered_batches_total = %v; want %v", name, got, wantCount)
		}
	}
	const w = 10 * time.Second
	f("refused", nil, w, []int{1, 2, 3, 4})
	f("reset", resetConn, w, []int{1, 2, 3, 4})
	f("timeout", stallAll, w, []int{1, 2, 3, 4})
	f("closed without answer", func(int, http.ResponseWriter, *http.Request) bool { panic(http.ErrAbortHandler) }, w, []int{1, 2, 3, 4})
	f("empty 502", status(http.StatusBadGateway, ""), w, []int{1, 2, 3, 4})
	f("500 with a body", status(http.StatusInternalServerError, "cannot write: disk full"), w, []int{4})
	f("503 with a body", status(http.StatusServiceUnavailable, "shutting down"), w, []int{4})
	f("429", status(http.StatusTooManyRequests, "busy"), w, []int{4})
	f("window 0", nil, 0, []int{4})
}

// A refused body (4xx) is an answer: it is dropped, nothing is sent again.
func TestRedeliverNotOnRefusal(t *testing.T) {
	a, b := newUpstream(t, nil), newUpstream(t, nil)
	set := metrics.NewSet()
	s := newShipper(t, redeliverConfig(a, b), Deps{Metrics: set})
	run(t, s)
	ackedByA(t, s, a, 3)
	a.setFault(func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 4 {
			http.Error(w, "cannot parse line", http.StatusBadRequest)
			return true
		}
		return false
	})
	s.Enqueue(batch(t, line(4)))
	s.Enqueue(batch(t, line(5)))
	// Batch 5 on a shows that the refusal of 4 was dealt with.
	waitFor(t, "batch 5 on a", 5*time.Second, func() bool { return slices.Contains(ids(a.received()), 5) })
	if got := ids(b.received()); len(got) != 0 {
		t.Fatalf("b received %v; want nothing", got)
	}
	if got := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); got != 1 {
		t.Fatalf("rejected = %v; want 1", got)
	}
	if got := metricValue(t, set, "procfleet_ship_redelivered_batches_total"); got != 0 {
		t.Fatalf("redelivered = %v; want 0", got)
	}
}

// bigBatch is batch i, its line followed by a comment of random hex that
// gzip cannot shrink much: about size bytes compressed.
func bigBatch(t *testing.T, i, size int) *Batch {
	t.Helper()
	raw := make([]byte, size)
	_, _ = rand.Read(raw)
	return batch(t, line(i)+"# "+hex.EncodeToString(raw)+"\n")
}

// What was acknowledged longer ago than the window, or pushed out by the
// byte bound (counted), is not sent again.
func TestRedeliverWindowBounds(t *testing.T) {
	t.Run("time", func(t *testing.T) {
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		cfg := redeliverConfig(a, b)
		// Long enough to see the batch kept on a loaded machine.
		cfg.RedeliverWindow = config.Duration(2 * time.Second)
		set := metrics.NewSet()
		s := newShipper(t, cfg, Deps{Metrics: set})
		run(t, s)
		ackedByA(t, s, a, 1)
		if got := metricValue(t, set, "procfleet_ship_redeliver_window_batches"); got != 1 {
			t.Fatalf("window batches = %v; want 1", got)
		}
		waitFor(t, "batch 1 out of the window", 10*time.Second, func() bool {
			return metricValue(t, set, "procfleet_ship_redeliver_window_batches") == 0 &&
				metricValue(t, set, "procfleet_ship_redeliver_window_bytes") == 0
		})
		s.Enqueue(batch(t, line(2)))
		waitFor(t, "batch 2 on a", 5*time.Second, func() bool { return len(a.received()) == 2 })
		a.down()
		s.Enqueue(batch(t, line(3)))
		waitFor(t, "batch 3 on b", 5*time.Second, func() bool { return slices.Contains(ids(b.received()), 3) })
		if got := ids(b.received()); !slices.Equal(got, []int{2, 3}) {
			t.Fatalf("b received %v; want 2 (in the window) and 3", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		cfg := redeliverConfig(a, b)
		cfg.RedeliverMaxBytes = 64 << 10
		set := metrics.NewSet()
		s := newShipper(t, cfg, Deps{Metrics: set})
		run(t, s)
		for i := 1; i <= 3; i++ {
			s.Enqueue(bigBatch(t, i, 30<<10))
		}
		waitFor(t, "a took 3 batches", 5*time.Second, func() bool { return len(a.received()) == 3 })
		// a counts a batch before it answers, and the shipper keeps it
		// once it has the answer: wait for the third to be kept.
		waitFor(t, "one batch evicted (three of 30KiB over 64KiB)", 5*time.Second, func() bool {
			return metricValue(t, set, "procfleet_ship_redeliver_evicted_batches_total") >= 1
		})
		if got := metricValue(t, set, "procfleet_ship_redeliver_evicted_batches_total"); got != 1 {
			t.Fatalf("evicted = %v; want 1 (three of 30KiB over 64KiB)", got)
		}
		if got := metricValue(t, set, "procfleet_ship_redeliver_window_bytes"); got <= 0 || got > 64<<10 {
			t.Fatalf("window bytes = %v; want some, at most 64KiB", got)
		}
		a.down()
		s.Enqueue(batch(t, line(4)))
		waitFor(t, "batch 4 on b", 5*time.Second, func() bool { return slices.Contains(ids(b.received()), 4) })
		if got := ids(b.received()); !slices.Equal(got, []int{2, 3, 4}) {
			t.Fatalf("b received %v; want 2, 3 and 4", got)
		}
	})
}

// Sending again takes bandwidth credit like any send: with a limit, the
// batches sent again and the new one take the time the budget gives them.
func TestRedeliverWithinBudget(t *testing.T) {
	a, b := newUpstream(t, nil), newUpstream(t, nil)
	const rate, burst, size = 100 << 10, 32 << 10, 30 << 10
	lim := limit.New(config.Limit{BytesPerSecond: rate, Burst: burst}, nil)
	s := newShipper(t, redeliverConfig(a, b), Deps{Limiter: lim})
	run(t, s)
	start := time.Now()
	for i := 1; i <= 3; i++ {
		s.Enqueue(bigBatch(t, i, size))
	}
	waitFor(t, "a took 3 batches", 10*time.Second, func() bool { return len(a.received()) == 3 })
	waitAnswered(t, s, a, 3)
	a.down()
	s.Enqueue(bigBatch(t, 4, size))
	waitFor(t, "batches 1 to 4 on b", 10*time.Second, func() bool { return len(b.received()) == 4 })
	if got := ids(b.received()); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("b received %v; want 1 to 4", got)
	}
	// 3 batches to a, 4 to b, and 4's failed attempt on a all took
	// credit: at least 8 batches less the burst, at the rate.
	sent := s.SentBytes()
	if min := time.Duration(float64(8*size-burst) / rate * 0.9 * float64(time.Second)); time.Since(start) < min {
		t.Fatalf("%d bytes sent in %s; the budget allows no less than %s", sent, time.Since(start), min)
	}
}

// The only upstream lost what it acknowledged: once it is back it gets
// it again, before the new batch.
func TestRedeliverToTheSoleUpstreamWhenBack(t *testing.T) {
	a := newUpstream(t, nil)
	set := metrics.NewSet()
	s := newShipper(t, testConfig(a.URL()), Deps{Metrics: set})
	run(t, s)
	ackedByA(t, s, a, 2)
	a.down()
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "a unhealthy", 5*time.Second, func() bool { return !stateOf(t, s, a.URL()).Healthy })
	a.up(t)
	waitFor(t, "a took 5 batches", 5*time.Second, func() bool { return len(a.received()) == 5 })
	if got := ids(a.received()); !slices.Equal(got, []int{1, 2, 1, 2, 3}) {
		t.Fatalf("a received %v; want 1, 2, then 1 and 2 again and 3", got)
	}
	if got := metricValue(t, set, "procfleet_ship_redelivered_batches_total"); got != 2 {
		t.Fatalf("redelivered = %v; want 2", got)
	}
}

// With a spool, what the sole upstream lost waits there with the new
// batch until it is back.
func TestRedeliverToTheSpool(t *testing.T) {
	a := newUpstream(t, nil)
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	set := metrics.NewSet()
	s := newShipper(t, testConfig(a.URL()), Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20})
	run(t, s)
	ackedByA(t, s, a, 2)
	a.down()
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "3 batches spooled", 5*time.Second, func() bool { return sp.Len() == 3 })
	a.up(t)
	waitFor(t, "the spool replayed", 10*time.Second, func() bool { return sp.Len() == 0 && len(a.received()) > 2 })
	if got := ids(a.received()); !slices.Equal(got, []int{1, 2, 1, 2, 3}) {
		t.Fatalf("a received %v; want 1, 2, then 1 and 2 again and 3 from the spool", got)
	}
}

// The relay's way: batches replayed from the log stay in it, held, for
// the window after an upstream took them; they are read back from it and
// sent to the next upstream when that one becomes unreachable, and
// acknowledged (deleted) once they leave the window.
func TestRedeliverFromTheSpool(t *testing.T) {
	f := func(window time.Duration) {
		t.Helper()
		a, b := newUpstream(t, nil), newUpstream(t, nil)
		sp := openSpool(t, t.TempDir(), spoolConfig())
		defer sp.Close()
		cfg := redeliverConfig(a, b)
		cfg.RedeliverWindow = config.Duration(window)
		set := metrics.NewSet()
		s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp, SpoolBatchBytes: 1 << 20})
		stop := run(t, s)
		storeLines := func(from, to int) {
			for i := from; i <= to; i++ {
				c := &Chunked{Chunks: [][]byte{testenv.Gzip(t, line(i))}, Samples: 1}
				if err := c.Store(sp, time.Now()); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the record sent", 5*time.Second, func() bool { return sp.Len() == 0 })
			}
		}
		storeLines(1, 3)
		waitFor(t, "a took 3 records", 5*time.Second, func() bool { return len(ids(a.received())) == 3 })
		wantHeld := 3
		if window == 0 {
			wantHeld = 0
		}
		if sp.Held() != wantHeld {
			t.Fatalf("window %s: spool holds %d records; want %d", window, sp.Held(), wantHeld)
		}
		a.down()
		storeLines(4, 4)
		waitFor(t, "record 4 on b", 5*time.Second, func() bool { return slices.Contains(ids(b.received()), 4) })
		want := []int{1, 2, 3, 4}
		if window == 0 {
			want = []int{4}
		}
		if got := ids(b.received()); !slices.Equal(got, want) {
			t.Fatalf("window %s: b received %v; want %v", window, got, want)
		}
		if window == 0 {
			return
		}
		if got := metricValue(t, set, "procfleet_ship_redelivered_batches_total"); got != 3 {
			t.Fatalf("redelivered = %v; want 3", got)
		}
		waitFor(t, "the records out of the window, deleted", 5*time.Second, func() bool { return sp.Held() == 0 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	f(time.Second)
	f(0)
}

// A probe that finds an upstream unreachable sends its window again too:
// it acknowledged batches, then answered errors, then went away.
func TestRedeliverOnProbe(t *testing.T) {
	a, b := newUpstream(t, nil), newUpstream(t, nil)
	cfg := redeliverConfig(a, b)
	set := metrics.NewSet()
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	ackedByA(t, s, a, 2)
	a.setFault(func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "overloaded", http.StatusInternalServerError)
		return true
	})
	s.Enqueue(batch(t, line(3)))
	s.Enqueue(batch(t, line(4)))
	waitFor(t, "a unhealthy", 5*time.Second, func() bool { return !stateOf(t, s, a.URL()).Healthy })
	if got := ids(b.received()); slices.Contains(got, 1) {
		t.Fatalf("b received %v while a answered errors; want nothing sent again", got)
	}
	a.down()
	waitFor(t, "batches 1 and 2 on b", 5*time.Second, func() bool {
		got := ids(b.received())
		return slices.Contains(got, 1) && slices.Contains(got, 2)
	})
	if st := strings.Join(strings.Fields(stateOf(t, s, a.URL()).LastError), " "); !strings.Contains(st, "probe") {
		t.Fatalf("a's last error %q; want a probe's", st)
	}
}

// Spooled records that the sole upstream lost wait in the spool, ahead of
// the backlog, until it is back, and are sent to it again then.
func TestRedeliverFromTheSpoolToTheSoleUpstream(t *testing.T) {
	a := newUpstream(t, nil)
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	cfg := testConfig(a.URL())
	cfg.RedeliverWindow = config.Duration(time.Second)
	set := metrics.NewSet()
	s := newShipper(t, cfg, Deps{Metrics: set, Spool: sp})
	run(t, s)
	store := func(i int) {
		t.Helper()
		c := &Chunked{Chunks: [][]byte{testenv.Gzip(t, line(i))}, Samples: 1}
		if err := c.Store(sp, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		store(i)
	}
	waitFor(t, "a took 3 records", 5*time.Second, func() bool { return len(ids(a.received())) == 3 })
	a.down()
	store(4)
	waitFor(t, "a unhealthy", 5*time.Second, func() bool { return !stateOf(t, s, a.URL()).Healthy })
	a.up(t)
	waitFor(t, "records 1 to 3 again and 4 on a", 10*time.Second, func() bool { return len(ids(a.received())) == 7 })
	if got := ids(a.received()); !slices.Equal(got, []int{1, 2, 3, 1, 2, 3, 4}) {
		t.Fatalf("a received %v; want 1 to 3, the same again, then 4", got)
	}
	waitFor(t, "the spool empty, nothing held", 5*time.Second, func() bool { return sp.Len() == 0 && sp.Held() == 0 })
}
