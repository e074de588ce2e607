package ship

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// textBatch is a text batch of s, as the compressor makes while the
// shipper wants text.
func textBatch(s string) *Batch {
	return &Batch{Body: []byte(s), Text: true, Samples: strings.Count(s, "\n"), Created: time.Now()}
}

// TestTextBatchesStreamed: once a stream is open the shipper wants text;
// text batches go into the stream as they are, and are readable in the
// pinned VictoriaMetrics while the request is still open.
func TestTextBatchesStreamed(t *testing.T) {
	vm := testenv.StartVM(t)
	set := metrics.NewSet()
	cfg := testConfig(vm.ImportURL)
	cfg.StreamFor = config.Duration(2 * time.Minute)
	var released sync.WaitGroup
	var releasedN int
	var relMu sync.Mutex
	s := newShipper(t, cfg, Deps{Metrics: set, TextDone: func(b []byte) {
		relMu.Lock()
		releasedN++
		relMu.Unlock()
		released.Done()
	}})
	stop := run(t, s)
	if s.WantsText() {
		t.Fatal("WantsText before any stream; want false")
	}
	ts := time.Now().UnixMilli()
	sample := func(i int) string {
		return fmt.Sprintf("procfleet_text_test{i=\"%d\"} %d %d\n", i, i, ts+int64(i)*1000)
	}
	s.Enqueue(batch(t, sample(0))) // alone: the answer says VictoriaMetrics
	waitFor(t, "the first batch", 10*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_requests_total{endpoint="`+vm.ImportURL+`",status="204"}`) == 1
	})
	s.Enqueue(batch(t, sample(1))) // opens the stream
	waitFor(t, "the stream open and text wanted", 10*time.Second, s.WantsText)
	for i := 2; i <= 4; i++ {
		released.Add(1)
		s.Enqueue(textBatch(sample(i)))
		waitFor(t, fmt.Sprintf("text batch %d queryable while its stream is open", i), 15*time.Second, func() bool {
			vm.Flush(t)
			got, err := vm.TryExport(fmt.Sprintf(`procfleet_text_test{i="%d"}`, i))
			return err == nil && len(got) == 1 && len(got[0].Values) == 1 && got[0].Values[0] == float64(i)
		})
	}
	released.Wait()
	if releasedN != 3 {
		t.Fatalf("text bodies given back = %d; want 3", releasedN)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := metricValue(t, set, "procfleet_ship_stream_segments_total"); got != 4 {
		t.Fatalf("segments = %v; want 4", got)
	}
	if got := metricValue(t, set, `procfleet_ship_requests_total{endpoint="`+vm.ImportURL+`",status="204"}`); got != 2 {
		t.Fatalf("requests answered 204 = %v; want 2 (the first alone, one streamed)", got)
	}
}

// TestTextBatchesCutResent cuts a stream of text batches: each is sent
// again alone, compressed (the upstream refuses plain bodies), with
// exactly its lines, and text is no longer wanted until a stream works.
func TestTextBatchesCutResent(t *testing.T) {
	for _, enc := range []string{config.StreamZstd, config.StreamGzip} {
		t.Run(enc, func(t *testing.T) {
			c := &streamCutter{cutAfter: 3}
			up := newUpstream(t, c.fault)
			set := metrics.NewSet()
			cfg := testConfig(up.URL())
			cfg.StreamFor = config.Duration(time.Minute)
			cfg.StreamEncoding = enc
			cfg.RedeliverWindow = 0
			s := newShipper(t, cfg, Deps{Metrics: set})
			stop := run(t, s)
			s.Enqueue(batch(t, line(0)))
			waitFor(t, "the first batch", 5*time.Second, func() bool { return len(c.taken()) == 1 })
			s.Enqueue(batch(t, line(1)))
			waitFor(t, "text wanted", 5*time.Second, s.WantsText)
			s.Enqueue(textBatch(line(2) + line(3)))
			s.Enqueue(textBatch(line(4)))
			waitFor(t, "the stream cut and its batches resent", 10*time.Second, func() bool {
				return metricValue(t, set, `procfleet_ship_streams_ended_total{result="failed"}`) == 1 && len(c.taken()) >= 4
			})
			if s.WantsText() {
				t.Fatal("WantsText after a failed stream; want false")
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var alone [][]string
			for _, r := range c.taken()[1:] {
				if r.streamed {
					continue
				}
				if r.enc != "gzip" {
					t.Fatalf("a resent batch went as %q; want gzip (compress.level's)", r.enc)
				}
				alone = append(alone, r.lines)
			}
			want := [][]string{{trim(line(1))}, {trim(line(2)), trim(line(3))}, {trim(line(4))}}
			if len(alone) < 3 || !slices.EqualFunc(alone[:3], want, slices.Equal) {
				t.Fatalf("requests of their own after the cut: %q; want %q", alone, want)
			}
		})
	}
}

func trim(s string) string { return strings.TrimSpace(s) }

// TestTextBatchNotStreamed: an upstream that does not stream (no
// X-Server-Hostname) gets a text batch compressed as the config says.
func TestTextBatchNotStreamed(t *testing.T) {
	for _, cc := range []config.Compress{{Encoding: config.EncodingGzip, Level: 1}, {Encoding: config.EncodingZstd}} {
		up := newUpstream(t, nil)
		var mu sync.Mutex
		var got []post
		gotN := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
		up.setFault(func(_ int, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && r.Header.Get("Content-Encoding") != cc.Encoding {
				http.Error(w, "Content-Encoding "+r.Header.Get("Content-Encoding"), http.StatusUnsupportedMediaType)
				return true
			}
			if r.Method == http.MethodPost && cc.Encoding == config.EncodingZstd {
				zr, err := decoder(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return true
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(zr)
				mu.Lock()
				got = append(got, post{body: buf.String()})
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
				return true
			}
			return false
		})
		cfg := testConfig(up.URL())
		s := newShipper(t, cfg, Deps{Text: cc})
		stop := run(t, s)
		s.Enqueue(textBatch(line(7)))
		waitFor(t, "the batch delivered", 5*time.Second, func() bool { return len(up.received())+gotN() == 1 })
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		all := append(bodies(up.received()), bodies(got)...)
		mu.Unlock()
		if bodies := all; len(bodies) != 1 || bodies[0] != line(7) {
			t.Fatalf("%s: received %q; want %q", cc.Encoding, bodies, line(7))
		}
		if s.WantsText() {
			t.Fatalf("%s: WantsText with an upstream that does not stream; want false", cc.Encoding)
		}
	}
}

// TestTextBatchQueuedBehind: a text batch that finds the queue not empty
// (the sender is behind, it will not be streamed now) is compressed as it
// is queued, so that the queue's byte bound counts compressed bytes.
func TestTextBatchQueuedBehind(t *testing.T) {
	s := newShipper(t, testConfig("http://127.0.0.1:1/api/v1/import/prometheus"), Deps{})
	s.Enqueue(batch(t, line(0)))
	tb := textBatch(line(1))
	s.Enqueue(tb)
	if tb.Text || tb.Zstd {
		t.Fatalf("queued behind another: Text %v, Zstd %v; want a gzip batch", tb.Text, tb.Zstd)
	}
	if got := string(gunzip(t, tb.Body)); got != line(1) {
		t.Fatalf("body reads %q; want %q", got, line(1))
	}
	first := textBatch(line(2))
	s2 := newShipper(t, testConfig("http://127.0.0.1:1/api/v1/import/prometheus"), Deps{})
	s2.Enqueue(first)
	if !first.Text {
		t.Fatal("a text batch into an empty queue was compressed; want it left for the sender")
	}
}

// TestStreamKeptWhole: a delivered stream is kept for the redelivery
// window as the one body it wrote; when the upstream then becomes
// unreachable and comes back, that body is sent again in one request with
// every line of the stream.
func TestStreamKeptWhole(t *testing.T) {
	c := &streamCutter{}
	up := newUpstream(t, c.fault)
	set := metrics.NewSet()
	cfg := testConfig(up.URL())
	cfg.StreamFor = config.Duration(2 * time.Second)
	cfg.RedeliverWindow = config.Duration(time.Minute)
	s := newShipper(t, cfg, Deps{Metrics: set})
	run(t, s)
	s.Enqueue(batch(t, line(0)))
	waitFor(t, "the first batch", 5*time.Second, func() bool { return len(c.taken()) == 1 })
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "text wanted", 5*time.Second, s.WantsText)
	s.Enqueue(textBatch(line(2)))
	s.Enqueue(textBatch(line(3)))
	waitFor(t, "the stream delivered", 5*time.Second, func() bool {
		return metricValue(t, set, `procfleet_ship_streams_ended_total{result="delivered"}`) == 1
	})
	streamed := c.taken()[1]
	if want := []string{trim(line(1)), trim(line(2)), trim(line(3))}; !streamed.streamed || !slices.Equal(streamed.lines, want) {
		t.Fatalf("the stream carried %+v; want %q streamed", streamed, want)
	}
	up.down()
	s.Enqueue(batch(t, line(4)))
	waitFor(t, "the upstream unhealthy", 10*time.Second, func() bool { return !stateOf(t, s, up.URL()).Healthy })
	up.up(t)
	waitFor(t, "line 4 delivered", 15*time.Second, func() bool {
		for _, r := range c.taken() {
			if slices.Contains(r.lines, trim(line(4))) {
				return true
			}
		}
		return false
	})
	var again []recorded
	for _, r := range c.taken()[2:] {
		if slices.Contains(r.lines, trim(line(2))) {
			again = append(again, r)
		}
	}
	if want := []string{trim(line(1)), trim(line(2)), trim(line(3))}; len(again) != 1 || again[0].enc != "zstd" || !slices.Equal(again[0].lines, want) {
		t.Fatalf("sent again after the outage: %+v; want one zstd request of %q", again, want)
	}
}

func gunzip(t *testing.T, body []byte) []byte {
	t.Helper()
	var tr textReader
	var buf bytes.Buffer
	if err := tr.read(&buf, &Batch{Body: body}, maxTextBytes); err != nil {
		t.Fatalf("cannot read the gzip body: %v", err)
	}
	return buf.Bytes()
}
