package scrape

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

// serve starts an httptest server with handler h.
func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// text answers body as Prometheus text.
func text(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte(body))
	}
}

// endless writes series until the client goes away, 4 MiB a write.
func endless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	// The first 4 MiB, distinct series made once, reach any limit a test
	// sets at once even on a loaded machine; then the same again, forever.
	head := endlessHead()
	for r.Context().Err() == nil {
		if _, err := w.Write(head); err != nil {
			return
		}
	}
}

var endlessHead = sync.OnceValue(func() []byte {
	b := make([]byte, 0, 4<<20+64)
	for i := int64(0); len(b) < 4<<20; i++ {
		b = append(b, `series_total{i="`...)
		b = strconv.AppendInt(b, i, 10)
		b = append(b, "\"} 1\n"...)
	}
	return b
})

// gzipBomb returns n newlines (blank lines, which parse) gzip-compressed:
// a few tens of KiB that inflate to n bytes.
func gzipBomb(t testing.TB, n int) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	chunk := bytes.Repeat([]byte("\n"), 1<<20)
	for ; n > 0; n -= len(chunk) {
		zw.Write(chunk[:min(n, len(chunk))])
	}
	zw.Close()
	return b.Bytes()
}

// TestScrapeFaults scrapes faulty targets next to a healthy one: each
// fails with its own error and up 0, writes nothing but its report, and
// the healthy target is scraped at every one of its instants meanwhile
// (TestScrapeBoundedReads checks what the scrapes read).
func TestScrapeFaults(t *testing.T) {
	const interval = 2 * time.Second
	bomb := gzipBomb(t, 64<<20)
	seriesBody := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "s{i=\"%d\"} 1\n", i)
		}
		return b.String()
	}(20000)
	cases := []struct {
		name  string
		h     http.HandlerFunc
		setup func(j *jobSettings)
		err   string
		// heavy cases read up to a limit (a MiB, 20,000 series) before
		// they fail: on a loaded machine under -race that takes longer
		// than the other cases' 1.3 s timeout, so they get three times it.
		heavy bool
	}{
		{name: "hang", h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, err: "context deadline exceeded"},
		{name: "5xx", h: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusServiceUnavailable) }, err: "server returned HTTP status 503 Service Unavailable"},
		{name: "garbage", h: text("ok 1\n<html>not metrics</html>\n"), err: "line 2, column 1"},
		{name: "invalid UTF-8", h: text("a{x=\"\xc3\x28\"} 1\n"), err: "invalid UTF-8"},
		{name: "labelmap to an invalid name", h: text("a{x_1=\"v\"} 1\n"), err: `invalid label name "1"`,
			setup: func(j *jobSettings) { j.labelmap = true }},
		{name: "1 GiB body", heavy: true, h: endless, err: "body size limit exceeded",
			setup: func(j *jobSettings) { j.bodyLimit = 1 << 20 }},
		{name: "1 GiB body under the host's bound", heavy: true, h: endless, err: "body size limit exceeded"},
		{name: "gzip bomb", heavy: true, err: "body size limit exceeded", setup: func(j *jobSettings) { j.bodyLimit = 1 << 20 },
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(bomb)
			}},
		{name: "10 million series", heavy: true, h: endless, err: "body size limit exceeded",
			setup: func(j *jobSettings) { j.sampleLimit = 1000 }},
		{name: "sample_limit", heavy: true, h: text(seriesBody), err: "sample limit exceeded (20000 samples after metric relabeling, limit 1000)",
			setup: func(j *jobSettings) { j.sampleLimit = 1000 }},
		{name: "samples over the host's bound", heavy: true, h: text(seriesBody), err: "sample limit exceeded (20000 samples after metric relabeling, limit 10000)"},
		{name: "OpenMetrics", err: "OpenMetrics is not supported", h: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
			w.Write([]byte("a_total 1\n# EOF\n"))
		}},
	}
	h := startManager(t, Config{MaxBodyBytes: 1 << 20, MaxSamples: 10000}, Deps{})
	healthy := target(t, testJob("ok", interval), serve(t, text("good 1\n")))
	targets := []Target{healthy}
	for _, c := range cases {
		j := jobSettings{}
		if c.setup != nil {
			c.setup(&j)
		}
		iv := interval
		if c.heavy {
			iv = 3 * interval
		}
		targets = append(targets, target(t, j.job(c.name, iv), serve(t, c.h)))
	}
	h.m.Apply(targets)
	waitFor(t, "every target scraped twice", 60*time.Second, func() bool {
		for _, tg := range targets {
			if len(h.sink.reports(t, "up", tg.Address)) < 2 {
				return false
			}
		}
		return true
	})
	for i, c := range cases {
		tg := targets[i+1]
		st, _ := h.state(tg.Address)
		up := h.sink.reports(t, "up", tg.Address)
		if up[0].Value != 0 || st.Health != HealthDown || !strings.Contains(st.LastError, c.err) {
			t.Errorf("%s: up %v, health %s, error %q; want up 0, down, an error with %q", c.name, up[0].Value, st.Health, st.LastError, c.err)
		}
		for _, s := range h.sink.samples(t) {
			if s.Labels["instance"] == tg.Address && !hasPrefixAny(s.Name, "up", "scrape_") {
				t.Errorf("%s: a failed scrape wrote %s", c.name, s.Key())
				break
			}
		}
	}
	// The healthy target was scraped at each of its instants, whatever
	// the others did meanwhile.
	good := h.sink.reports(t, "up", healthy.Address)
	for i := 1; i < len(good); i++ {
		if gap := good[i].Timestamp - good[i-1].Timestamp; gap != interval.Milliseconds() || good[i].Value != 1 {
			t.Fatalf("healthy target: stamps %d and %d (%d ms apart), up %v", good[i-1].Timestamp, good[i].Timestamp, gap, good[i].Value)
		}
	}
}

// TestScrapeBoundedReads checks, one fault per manager, that a scrape
// stops reading at its body limit: the bytes read (the manager's
// procfleet_scrape_body_bytes_total) stay within the limit and a read
// buffer, whatever the target would send.
func TestScrapeBoundedReads(t *testing.T) {
	bomb := gzipBomb(t, 64<<20)
	for name, h := range map[string]http.HandlerFunc{
		"endless": endless,
		"gzip bomb": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb)
		},
	} {
		t.Run(name, func(t *testing.T) {
			const limit = 1 << 20
			hs := startManager(t, Config{MaxBodyBytes: limit, MaxSamples: 1000}, Deps{})
			tg := target(t, testJob("j", time.Second), serve(t, h))
			hs.m.Apply([]Target{tg})
			waitFor(t, "two scrapes", 30*time.Second, func() bool { return hs.metric("procfleet_scrape_scrapes_total") >= 2 })
			scrapes := hs.metric("procfleet_scrape_scrapes_total")
			read := hs.metric("procfleet_scrape_body_bytes_total")
			if read > scrapes*(limit+64<<10) || hs.metric(`procfleet_scrape_failures_total{reason="body_size_limit"}`) != scrapes {
				t.Fatalf("%v scrapes read %v bytes, %v failed on the body limit; want at most %d bytes each, all failed",
					scrapes, read, hs.metric(`procfleet_scrape_failures_total{reason="body_size_limit"}`), limit+64<<10)
			}
		})
	}
}

// TestScrapeDuplicates: a body that gives a series twice without a
// timestamp fails the scrape (up 0, the error names the line) and writes
// nothing but the report. Prometheus keeps the first sample; procfleet
// shows the broken exporter instead (ScrapeOptions.FailOnDuplicates).
func TestScrapeDuplicates(t *testing.T) {
	h := startManager(t, DefaultConfig(), Deps{})
	tg := target(t, testJob("j", 300*time.Millisecond), serve(t, text("a 1\na 2\nb 3\n")))
	h.m.Apply([]Target{tg})
	waitFor(t, "a scrape", 20*time.Second, func() bool { return len(h.sink.reports(t, "up", tg.Address)) >= 1 })
	if up := h.sink.reports(t, "up", tg.Address); up[0].Value != 0 {
		t.Fatalf("up = %v; want 0", up[0].Value)
	}
	st, _ := h.state(tg.Address)
	if st.Health != HealthDown || !strings.Contains(st.LastError, "duplicate series: line 2 ") {
		t.Fatalf("state %+v; want down with the duplicate's line", st)
	}
	for _, name := range []string{"a", "b"} {
		if got := h.sink.reports(t, name, tg.Address); len(got) != 0 {
			t.Fatalf("%s written by a failed scrape: %+v", name, got)
		}
	}
	if h.metric(`procfleet_scrape_samples_dropped_total{reason="duplicate"}`) < 1 {
		t.Fatal("the duplicate is not counted")
	}
}

// jobSettings are the settings of a test job that differ from the
// defaults.
type jobSettings struct {
	bodyLimit, sampleLimit int
	labelmap               bool
}

func (s jobSettings) job(name string, interval time.Duration) *config.ScrapeConfig {
	j := testJob(strings.NewReplacer(" ", "_").Replace(name), interval)
	j.ScrapeTimeout = j.ScrapeInterval * 2 / 3
	j.BodySizeLimit = config.PromByteSize(s.bodyLimit)
	j.SampleLimit = s.sampleLimit
	if s.labelmap {
		r := config.DefaultRelabelConfig()
		r.Action, r.Regex = config.RelabelLabelMap, "x_(.*)"
		j.MetricRelabelConfigs = []config.RelabelConfig{r}
	}
	return j
}

// TestScrapeTargetOverLimits gives a target more labels than
// VictoriaMetrics takes: it is not scraped, and its up 0 carries its job
// and instance.
func TestScrapeTargetOverLimits(t *testing.T) {
	var extra []string
	for i := range 40 {
		extra = append(extra, fmt.Sprintf("l%02d", i), "v")
	}
	h := startManager(t, DefaultConfig(), Deps{})
	tg := target(t, testJob("wide", 300*time.Millisecond), serve(t, text("a 1\n")), extra...)
	h.m.Apply([]Target{tg})
	waitFor(t, "a report", 20*time.Second, func() bool { return len(h.sink.reports(t, "up", tg.Address)) >= 1 })
	up := h.sink.reports(t, "up", tg.Address)[0]
	st, _ := h.state(tg.Address)
	if up.Value != 0 || up.Labels["job"] != "wide" || len(up.Labels) != 2 || !strings.Contains(st.LastError, "leave no room") {
		t.Fatalf("up %+v, error %q", up, st.LastError)
	}
}
