package ship

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/config"
)

func TestDeliver(t *testing.T) {
	up := newUpstream(t, nil)
	set := metrics.NewSet()
	q := url.Values{"extra_label": {"instance=host1", "job=procfleet"}}
	cfg := testConfig(up.URL() + "?foo=bar")
	s := newShipper(t, cfg, Deps{Metrics: set, Query: q})
	run(t, s)
	want := []string{line(1), line(2) + line(3), line(4)}
	for _, w := range want {
		s.Enqueue(batch(t, w))
	}
	waitFor(t, "3 batches", 5*time.Second, func() bool { return len(up.received()) == 3 })
	got := up.received()
	if !reflect.DeepEqual(bodies(got), want) {
		t.Fatalf("bodies = %q; want %q", bodies(got), want)
	}
	p := got[0]
	if p.path != "/api/v1/import/prometheus" {
		t.Fatalf("path = %s", p.path)
	}
	if h := p.header.Get("Content-Encoding"); h != "gzip" {
		t.Fatalf("Content-Encoding = %q", h)
	}
	if h := p.header.Get("Content-Type"); h != "text/plain" {
		t.Fatalf("Content-Type = %q", h)
	}
	if !reflect.DeepEqual(p.query["extra_label"], q["extra_label"]) || p.query.Get("foo") != "bar" {
		t.Fatalf("query = %v; want foo=bar and extra_label %v", p.query, q["extra_label"])
	}
	label := up.URL() // no query in the label
	// The server records a post before the shipper has its answer: wait for
	// the shipper to count the third.
	waitFor(t, "3 sends counted", 5*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_send_seconds_count`) == 3
	})
	for name, want := range map[string]float64{
		`procfleet_ship_requests_total{endpoint="` + label + `",status="204"}`: 3,
		`procfleet_ship_endpoint_healthy{endpoint="` + label + `"}`:            1,
		`procfleet_ship_retries_total`:                                         0,
		`procfleet_ship_queue_batches`:                                         0,
		`procfleet_ship_dropped_batches_total{reason="queue_full"}`:            0,
		`procfleet_ship_send_seconds_count`:                                    3,
	} {
		if got := metricValue(t, set, name); got != want {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}
	if got := metricValue(t, set, `procfleet_ship_bytes_total{endpoint="`+label+`"}`); got <= 0 {
		t.Errorf("bytes_total = %v; want > 0", got)
	}
}

func TestRetry5xxThenSuccess(t *testing.T) {
	up := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && n <= 2 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return true
		}
		return false
	})
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.FailuresToUnhealthy = 3
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "delivery", 5*time.Second, func() bool { return len(up.received()) == 1 })
	if got := metricValue(t, set, "procfleet_ship_retries_total"); got != 2 {
		t.Fatalf("retries = %v; want 2", got)
	}
	// The server records the post before the shipper has its answer.
	waitFor(t, "the success recorded", 5*time.Second, func() bool { return stateOf(t, s, up.URL()).ConsecutiveFailures == 0 })
	st := stateOf(t, s, up.URL())
	if !st.Healthy || st.ConsecutiveFailures != 0 || !strings.Contains(st.LastError, "HTTP 500: try later") {
		t.Fatalf("state = %+v", st)
	}
}

func TestRetryAfter(t *testing.T) {
	f := func(retryAfter string, maxBackoff, minGap, maxGap time.Duration) {
		t.Helper()
		up := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && n == 1 {
				w.Header().Set("Retry-After", retryAfter)
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return true
			}
			return false
		})
		cfg := testConfig(up.URL())
		cfg.Retry.MaxBackoff = config.Duration(maxBackoff)
		cfg.FailuresToUnhealthy = 1 // a 429 must not count
		s := newShipper(t, cfg, Deps{})
		run(t, s)
		start := time.Now()
		s.Enqueue(batch(t, line(1)))
		waitFor(t, "delivery", 10*time.Second, func() bool { return len(up.received()) == 1 })
		gap := up.received()[0].at.Sub(start)
		if gap < minGap || gap > maxGap {
			t.Fatalf("Retry-After %q, max backoff %s: delivered after %s; want %s..%s",
				retryAfter, maxBackoff, gap, minGap, maxGap)
		}
		if st := stateOf(t, s, up.URL()); !st.Healthy {
			t.Fatalf("429 made the endpoint unhealthy: %+v", st)
		}
	}
	f("1", 2*time.Second, time.Second, 1800*time.Millisecond)
	// Capped at MaxBackoff.
	f("3600", 300*time.Millisecond, 300*time.Millisecond, 1100*time.Millisecond)
	// An HTTP date, about 2s ahead (second resolution).
	f(time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat), 5*time.Second,
		900*time.Millisecond, 2800*time.Millisecond)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := parseRetryAfter(v, now, 30*time.Second); got != want {
			t.Fatalf("parseRetryAfter(%q) = %s; want %s", v, got, want)
		}
	}
	f("", 0)
	f("junk", 0)
	f("-5", 0)
	f("0", 0)
	f("7", 7*time.Second)
	f("99999999999999", 30*time.Second)
	f(now.Add(10*time.Second).Format(http.TimeFormat), 10*time.Second)
	f(now.Add(-time.Hour).Format(http.TimeFormat), 0)
	f(now.Add(time.Hour).Format(http.TimeFormat), 30*time.Second)
}

func TestReject4xx(t *testing.T) {
	for _, code := range []int{400, 413, 415, 422} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			bad := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPost {
					http.Error(w, "cannot parse line", code)
					return true
				}
				return false
			})
			good := newUpstream(t, nil)
			set := metrics.NewSet()
			cfg := testConfig(bad.URL(), good.URL())
			cfg.FailuresToUnhealthy = 1
			s := newShipper(t, cfg, Deps{Metrics: set})
			run(t, s)
			for i := range 6 {
				s.Enqueue(batch(t, line(i)))
			}
			waitFor(t, "3 batches on the good upstream", 5*time.Second, func() bool {
				return len(good.received()) == 3 &&
					metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`) == 3
			})
			if posts, _ := bad.counts(); posts != 3 {
				t.Fatalf("bad upstream saw %d posts; want 3 (no retries)", posts)
			}
			if got := metricValue(t, set, "procfleet_ship_retries_total"); got != 0 {
				t.Fatalf("retries = %v; want 0", got)
			}
			st := stateOf(t, s, bad.URL())
			if !st.Healthy || !strings.Contains(st.LastError, "cannot parse line") {
				t.Fatalf("rejecting endpoint state = %+v; want healthy with the error body", st)
			}
		})
	}
}

// 401, 403 and 404 say the upstream or the credentials are misconfigured,
// not that the body is bad: the batch fails over and is not dropped.
func TestMisconfig4xxFailsOver(t *testing.T) {
	for _, code := range []int{401, 403, 404} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			bad := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPost {
					http.Error(w, "no", code)
					return true
				}
				return false
			})
			good := newUpstream(t, nil)
			set := metrics.NewSet()
			cfg := testConfig(bad.URL(), good.URL())
			cfg.Strategy = config.StrategyOrdered
			s := newShipper(t, cfg, Deps{Metrics: set})
			run(t, s)
			for i := range 4 {
				s.Enqueue(batch(t, line(i)))
			}
			waitFor(t, "4 batches on the good upstream", 5*time.Second, func() bool {
				return len(good.received()) == 4
			})
			if got := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); got != 0 {
				t.Fatalf("dropped %v batches; want none", got)
			}
			// Counted as a failure (the batch was retried elsewhere), not as
			// a rejection. The failure count itself is reset by the next
			// successful probe, so it is not read here.
			if got := metricValue(t, set, "procfleet_ship_retries_total"); got < 1 {
				t.Fatalf("retries = %v; want the misconfigured answers counted as failures", got)
			}
		})
	}
}

func TestQueueFullDropsOldest(t *testing.T) {
	up := newUpstream(t, nil)
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.QueueBatches = 3
	s := newShipper(t, cfg, Deps{Metrics: set})
	for i := 1; i <= 5; i++ {
		s.Enqueue(batch(t, line(i)))
	}
	if n := s.QueueLen(); n != 3 {
		t.Fatalf("QueueLen = %d; want 3", n)
	}
	if got := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="queue_full"}`); got != 2 {
		t.Fatalf("dropped = %v; want 2", got)
	}
	if got := metricValue(t, set, "procfleet_ship_queue_batches"); got != 3 {
		t.Fatalf("queue gauge = %v; want 3", got)
	}
	run(t, s)
	waitFor(t, "3 batches", 5*time.Second, func() bool { return len(up.received()) == 3 })
	want := []string{line(3), line(4), line(5)}
	if got := bodies(up.received()); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %q; want the newest %q", got, want)
	}
}

func TestSetUpstreams(t *testing.T) {
	a := newUpstream(t, nil)
	b := newUpstream(t, nil)
	set := metrics.NewSet()
	s := newShipper(t, testConfig(a.URL()), Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "batch on a", 5*time.Second, func() bool { return len(a.received()) == 1 })

	// a fails from now on and becomes unhealthy.
	a.setFault(func(int, http.ResponseWriter, *http.Request) bool { panic(http.ErrAbortHandler) })
	s.Enqueue(batch(t, line(2)))
	waitFor(t, "a unhealthy", 5*time.Second, func() bool { return !stateOf(t, s, a.URL()).Healthy })

	if err := s.SetUpstreams([]string{b.URL(), "ftp://nope"}); err == nil {
		t.Fatal("SetUpstreams accepted ftp://")
	}
	if err := s.SetUpstreams([]string{b.URL(), a.URL(), b.URL()}); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	if len(st) != 2 || st[0].URL != b.URL() || !st[0].Healthy || st[1].URL != a.URL() || st[1].Healthy {
		t.Fatalf("state = %+v; want b healthy, then a still unhealthy", st)
	}
	// a closed the connection without an answer: batch 1, which it
	// acknowledged moments ago, goes to b again, before batch 2.
	waitFor(t, "batches 1 and 2 on b", 5*time.Second, func() bool { return len(b.received()) == 2 })
	if got, want := bodies(b.received()), []string{line(1), line(2)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("b received %q; want %q", got, want)
	}

	if err := s.SetUpstreams([]string{b.URL()}); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, set, `procfleet_ship_endpoint_healthy{endpoint="`+a.URL()+`"}`); got != -1 {
		t.Fatalf("health gauge of a removed endpoint = %v; want gone", got)
	}
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "batch 3 on b", 5*time.Second, func() bool { return len(b.received()) == 3 })
}

func TestDrainOnStop(t *testing.T) {
	up := newUpstream(t, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
	s := newShipper(t, testConfig(up.URL()), Deps{})
	stop := run(t, s)
	for i := range 10 {
		s.Enqueue(batch(t, line(i)))
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("drain took %s; want within DrainTimeout", el)
	}
	if n := len(up.received()); n != 10 {
		t.Fatalf("delivered %d of 10 before Run returned", n)
	}
}

func TestDrainTimeout(t *testing.T) {
	up := newUpstream(t, func(int, http.ResponseWriter, *http.Request) bool { panic(http.ErrAbortHandler) })
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.DrainTimeout = config.Duration(300 * time.Millisecond)
	s := newShipper(t, cfg, Deps{Metrics: set})
	stop := run(t, s)
	for i := range 4 {
		s.Enqueue(batch(t, line(i)))
	}
	// The sender holds a batch that cannot be delivered.
	waitFor(t, "a first post", 5*time.Second, func() bool { posts, _ := up.counts(); return posts >= 1 })
	start := time.Now()
	err := stop()
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("Run returned %s after stop; want about DrainTimeout", el)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot deliver 4 batches") {
		t.Fatalf("Run = %v; want 4 undelivered batches", err)
	}
	if got := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="drain_timeout"}`); got != 4 {
		t.Fatalf("dropped drain_timeout = %v; want 4", got)
	}
}

func TestLimiterPacesSends(t *testing.T) {
	up := newUpstream(t, nil)
	b := batch(t, strings.Repeat(line(1), 10))
	n := int64(len(b.Body))
	// Rate: 10 bodies per second, burst one body: 4 sends take ~300ms.
	lim := limit.New(config.Limit{BytesPerSecond: config.ByteRate(10 * n), Burst: config.ByteSize(n)}, nil)
	s := newShipper(t, testConfig(up.URL()), Deps{Limiter: lim})
	run(t, s)
	start := time.Now()
	for range 4 {
		s.Enqueue(&Batch{Body: b.Body})
	}
	waitFor(t, "4 batches", 5*time.Second, func() bool { return len(up.received()) == 4 })
	if el := time.Since(start); el < 280*time.Millisecond {
		t.Fatalf("4 sends took %s; want >= 300ms at the limited rate", el)
	}
}

func TestRunTwice(t *testing.T) {
	s := newShipper(t, testConfig(), Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx); err == nil {
		t.Fatal("second Run accepted")
	}
}
