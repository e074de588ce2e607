package ship

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

// Every 4xx but 429 refuses the body: the batch is dropped, counted by
// status code and logged with the receiver's message, and never sent
// again. The next batch reaching the upstream shows that the shipper had
// its chance to retry the first.
func TestRemoteWriteRefusedNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 413} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			up := newRWUpstream(t, false, func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					http.Error(w, "receiver says no: reason "+strconv.Itoa(code), code)
					return true
				}
				return false
			})
			set := metrics.NewSet()
			s := newShipper(t, rwConfig(1, up.URL()), Deps{Metrics: set})
			run(t, s)
			s.Enqueue(batch(t, line(1)))
			waitFor(t, "the refusal counted", 5*time.Second, func() bool {
				return metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`) == 1
			})
			s.Enqueue(batch(t, line(2)))
			waitFor(t, "the next batch", 5*time.Second, func() bool { return len(up.received()) == 1 })
			if n := up.requests(); n != 2 {
				t.Fatalf("%d requests; want 2: the refused batch was sent again", n)
			}
			if got := up.received()[0].series; len(got) != 1 || !strings.Contains(got[0], "i=2") {
				t.Fatalf("received %q; want batch 2 only", got)
			}
			name := `procfleet_ship_refused_requests_total{endpoint="` + up.URL() + `",status="` + strconv.Itoa(code) + `"}`
			if n := metricValue(t, set, name); n != 1 {
				t.Fatalf("%s = %v; want 1", name, n)
			}
			st := stateOf(t, s, up.URL())
			if !st.Healthy || !strings.Contains(st.LastError, "receiver says no: reason "+strconv.Itoa(code)) {
				t.Fatalf("state %+v; want healthy, the receiver's message as last error", st)
			}
			if n := metricValue(t, set, "procfleet_ship_retries_total"); n != 0 {
				t.Fatalf("retries = %v", n)
			}
		})
	}
}

// A 5xx is retried with backoff until the upstream takes the batch.
func TestRemoteWrite5xxRetried(t *testing.T) {
	up := newRWUpstream(t, false, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 2 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return true
		}
		return false
	})
	cfg := rwConfig(1, up.URL())
	cfg.FailuresToUnhealthy = 5
	set := metrics.NewSet()
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "the batch taken", 5*time.Second, func() bool { return len(up.received()) == 1 })
	if n := up.requests(); n != 3 {
		t.Fatalf("%d requests; want 3", n)
	}
	if n := metricValue(t, set, "procfleet_ship_retries_total"); n != 2 {
		t.Fatalf("retries = %v; want 2", n)
	}
}

// A 429 with Retry-After: 2 holds the next attempt back at least 2 s.
func TestRemoteWrite429RetryAfter(t *testing.T) {
	up := newRWUpstream(t, false, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	var first time.Time
	up.fault = wrapFirstAt(up.fault, &first)
	cfg := rwConfig(1, up.URL())
	cfg.Retry.MaxBackoff = config.Duration(5 * time.Second) // caps Retry-After
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "the batch taken", 6*time.Second, func() bool { return len(up.received()) == 1 })
	if gap := up.received()[0].at.Sub(first); gap < 2*time.Second {
		t.Fatalf("retried %s after the 429; want at least 2s", gap)
	}
	if n := up.requests(); n != 2 {
		t.Fatalf("%d requests; want 2", n)
	}
}

// wrapFirstAt records when the first request arrived.
func wrapFirstAt(f func(int, http.ResponseWriter, *http.Request) bool, at *time.Time) func(int, http.ResponseWriter, *http.Request) bool {
	return func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			*at = time.Now()
		}
		return f(n, w, r)
	}
}

// A receiver that stalls past the response timeout, and one that closes
// the connection in the middle of the body, fail the attempt; the batch
// goes to the other upstream, once.
func TestRemoteWriteStallAndClose(t *testing.T) {
	cases := map[string]func(n int, w http.ResponseWriter, r *http.Request) bool{
		"stall": func(_ int, _ http.ResponseWriter, r *http.Request) bool {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		},
		"close mid-body": func(_ int, w http.ResponseWriter, r *http.Request) bool {
			_, _ = io.ReadFull(r.Body, make([]byte, 10))
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
			return true
		},
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			bad := newRWUpstream(t, false, fault)
			good := newRWUpstream(t, false, nil)
			cfg := rwConfig(1, bad.URL(), good.URL())
			cfg.Timeouts.Response = config.Duration(200 * time.Millisecond)
			cfg.Strategy = config.StrategyOrdered
			s := newShipper(t, cfg, Deps{})
			run(t, s)
			// A body larger than the socket buffers, so that the close
			// comes before the client finished writing it.
			var text strings.Builder
			for i := range 20000 {
				text.WriteString(line(i))
			}
			s.Enqueue(batch(t, text.String()))
			waitFor(t, "the batch on the good upstream", 10*time.Second, func() bool { return len(good.received()) == 1 })
			if n := len(good.received()[0].series); n != 20000 {
				t.Fatalf("%d samples; want 20000", n)
			}
			if bad.requests() < 1 || len(bad.received()) != 0 {
				t.Fatalf("bad upstream: %d requests, %d taken", bad.requests(), len(bad.received()))
			}
			if st := stateOf(t, s, bad.URL()); st.LastError == "" {
				t.Fatalf("bad upstream state %+v; want its failure", st)
			}
		})
	}
}

// A receiver without an out-of-order window refuses old samples with a
// 400; such refusals are counted apart.
func TestRemoteWriteOutOfOrderCounted(t *testing.T) {
	up := newRWUpstream(t, false, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			http.Error(w, `out of order sample for series {__name__="m"}`, http.StatusBadRequest)
			return true
		}
		return false
	})
	set := metrics.NewSet()
	s := newShipper(t, rwConfig(1, up.URL()), Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "the refusal counted", 5*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_out_of_order_refusals_total{endpoint="`+up.URL()+`"}`) == 1
	})
	if n := metricValue(t, set, `procfleet_ship_refused_requests_total{endpoint="`+up.URL()+`",status="400"}`); n != 1 {
		t.Fatalf("refused = %v", n)
	}
}

// A body that cannot be converted (a line the encoder cannot read) is
// refused without a request.
func TestRemoteWriteUnconvertibleDropped(t *testing.T) {
	up := newRWUpstream(t, false, nil)
	set := metrics.NewSet()
	s := newShipper(t, rwConfig(1, up.URL()), Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, "m{a=\"unclosed} 1\n"))
	s.Enqueue(batch(t, line(2)))
	waitFor(t, "the good batch", 5*time.Second, func() bool { return len(up.received()) == 1 })
	if n := metricValue(t, set, `procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`); n != 1 || up.requests() != 1 {
		t.Fatalf("dropped %v, %d requests; want 1 and 1", n, up.requests())
	}
	if st := stateOf(t, s, up.URL()); !strings.Contains(st.LastError, "line 1: label value not closed") {
		t.Fatalf("state %+v", st)
	}
}
