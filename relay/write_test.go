package relay

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// Remote write 1.0 and 2.0 bodies pushed to the relay reach a real
// VictoriaMetrics with every series, label, value and timestamp, and the
// extra labels of their request; 2.0 answers say what was written.
func TestRemoteWriteToVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	r := start(t, testConfig(t, vm.ImportURL))
	ts := time.Now().Add(-time.Hour).UnixMilli()
	for _, v := range []int{1, 2} {
		series := []rwSeries{
			{labels: [][2]string{{"__name__", "rw_a"}, {"v", fmt.Sprint(v)}, {"path", `C:\x "q"`}}, values: []float64{1.5, -2, 1e-9}, times: []int64{ts, ts + 1000, ts + 2000}},
			{labels: [][2]string{{"job", "j"}, {"__name__", "rw_b"}, {"v", fmt.Sprint(v)}, {"empty", ""}}, values: []float64{123456789}, times: []int64{ts}},
		}
		req, err := http.NewRequest(http.MethodPost, r.base+WritePath+"?extra_label=dc%3Dwest", bytes.NewReader(rwBody(v, series)))
		if err != nil {
			t.Fatal(err)
		}
		h := rwHeaders(v)
		for i := 0; i < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("v%d: %s; want 204", v, resp.Status)
		}
		got := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written")
		if want := map[int]string{1: "", 2: "4"}[v]; got != want {
			t.Errorf("v%d: Samples-Written %q; want %q", v, got, want)
		}
		if v == 2 && (resp.Header.Get("X-Prometheus-Remote-Write-Histograms-Written") != "0" || resp.Header.Get("X-Prometheus-Remote-Write-Exemplars-Written") != "0") {
			t.Errorf("v2: histogram and exemplar headers %v", resp.Header)
		}
		if n := r.metric(t, fmt.Sprintf(`procfleet_relay_remote_write_samples_total{version="%d"}`, v)); n != 4 {
			t.Errorf("v%d: samples metric %v; want 4", v, n)
		}
	}
	want := map[string][]float64{}
	for _, v := range []string{"1", "2"} {
		want[testenv.SeriesKey("rw_a", map[string]string{"v": v, "path": `C:\x "q"`, "dc": "west"})] = []float64{1.5, -2, 1e-9}
		want[testenv.SeriesKey("rw_b", map[string]string{"v": v, "job": "j", "dc": "west"})] = []float64{123456789}
	}
	var got []testenv.Series
	waitFor(t, "4 series in VictoriaMetrics", 20*time.Second, func() bool {
		_, _ = vm.TryFlush()
		ss, err := vm.TryExport(`{__name__=~"rw_a|rw_b"}`)
		got = ss
		return err == nil && len(ss) == 4 && len(ss[0].Values)+len(ss[1].Values)+len(ss[2].Values)+len(ss[3].Values) == 8
	})
	for _, s := range got {
		w, ok := want[s.Key()]
		if !ok {
			t.Fatalf("unexpected series %s; want %v", s.Key(), want)
		}
		if fmt.Sprint(s.Values) != fmt.Sprint(w) {
			t.Errorf("%s: values %v; want %v", s.Key(), s.Values, w)
		}
		for i, x := range s.Timestamps {
			if x != ts+int64(i)*1000 {
				t.Errorf("%s: timestamps %v; want from %d a second apart", s.Key(), s.Timestamps, ts)
			}
		}
	}
	if n := r.metric(t, "procfleet_relay_received_samples_total"); n != 8 {
		t.Errorf("received samples = %v; want 8", n)
	}
}

// Every refusal of a remote write has its status and reason, names what
// is wrong and where, and stores nothing.
func TestRemoteWriteRefusals(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxDecompressedBytes = 256 << 10
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	r := start(t, cfg)
	ts := time.Now().UnixMilli()
	good := []rwSeries{{labels: [][2]string{{"__name__", "m"}}, values: []float64{1}, times: []int64{ts}}}
	noName := append(good, rwSeries{labels: [][2]string{{"job", "x"}}, values: []float64{1}, times: []int64{ts}})
	dup := append(good, rwSeries{labels: [][2]string{{"__name__", "m"}, {"a", "1"}, {"a", "2"}}, values: []float64{1}, times: []int64{ts}})
	secs := append(good, rwSeries{labels: [][2]string{{"__name__", "m"}}, values: []float64{1}, times: []int64{ts / 1000}})
	badUTF8 := append(good, rwSeries{labels: [][2]string{{"__name__", "m"}, {"a", "\xff"}}, values: []float64{1}, times: []int64{ts}})
	// 1 MiB of zeros claim to be a request: over max_decompressed_bytes.
	big := snappy.Encode(nil, make([]byte, 1<<20))
	lie := append(protowire.AppendVarint(nil, 100<<10), 0, 0, 0)
	v1, v2 := rwHeaders(1), rwHeaders(2)
	cases := []struct {
		name   string
		query  string
		body   []byte
		header []string
		code   int
		reason string
		msg    string
	}{
		{"no name", "", rwBody(1, noName), v1, 400, reasonBadSeries, "timeseries[1], at byte"},
		{"no name v2", "", rwBody(2, noName), v2, 400, reasonBadSeries, "timeseries[1], at byte"},
		{"label twice", "", rwBody(2, dup), v2, 400, reasonBadSeries, "timeseries[1] (m), at byte 50: label a given twice"},
		{"seconds", "", rwBody(1, secs), v1, 400, reasonBadSeries, "reads as seconds"},
		{"bad utf8", "", rwBody(1, badUTF8), v1, 400, reasonBadSeries, "not valid UTF-8"},
		{"v1 body as v2", "", rwBody(1, good), v2, 400, reasonBadSeries, "1.0 body sent as 2.0"},
		{"bad snappy", "", []byte("\x10garbage"), v1, 400, reasonBadSnappy, "snappy"},
		{"snappy header lies", "", lie, v1, 400, reasonBadSnappy, "more than a snappy block holds"},
		{"decompressed too large", "", big, v1, 413, reasonTooLarge, "max_decompressed_bytes"},
		{"body too large", "", make([]byte, 65<<10), v1, 413, reasonTooLarge, "max_body_bytes"},
		{"no snappy", "", rwBody(1, good), []string{"Content-Type", "application/x-protobuf"}, 415, reasonEncoding, "wants snappy"},
		{"content type", "", rwBody(1, good), []string{"Content-Encoding", "snappy", "Content-Type", "text/plain"}, 415, reasonEncoding, "application/x-protobuf"},
		{"proto", "", rwBody(1, good), []string{"Content-Encoding", "snappy", "Content-Type", "application/x-protobuf;proto=foo.Bar"}, 415, reasonEncoding, `proto="foo.Bar"`},
		{"timestamp arg", "?timestamp=1700000000000", rwBody(1, good), v1, 400, reasonQuery, "every sample carries its own"},
		{"extra_label", "?extra_label=bad", rwBody(1, good), v1, 400, reasonQuery, "extra_label"},
	}
	if len(big) > int(cfg.Import.MaxBodyBytes) {
		t.Fatalf("the big body is %d bytes compressed, over max_body_bytes", len(big))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := r.metric(t, `procfleet_relay_rejected_total{reason="`+c.reason+`"}`)
			code, msg := push(t, nil, r.base+WritePath+c.query, c.body, c.header...)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Fatalf("%d %q; want %d with %q", code, msg, c.code, c.msg)
			}
			if after := r.metric(t, `procfleet_relay_rejected_total{reason="`+c.reason+`"}`); after != before+1 {
				t.Fatalf("rejected{reason=%q} went %v -> %v; want +1", c.reason, before, after)
			}
		})
	}
	if n := r.WAL().Len(); n != 0 {
		t.Fatalf("the log holds %d records after refusals only; want 0", n)
	}
	if code, msg := push(t, nil, r.base+WritePath, nil, "Content-Type", "application/x-protobuf"); code != 405 && code != 415 {
		t.Fatalf("empty body without snappy: %d %q", code, msg)
	}
	req, _ := http.NewRequest(http.MethodGet, r.base+WritePath, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %v %v; want 405 with Allow: POST", resp, err)
	} else {
		resp.Body.Close()
	}
	// An empty request is fine and stores nothing.
	if code, msg := push(t, nil, r.base+WritePath, snappy.Encode(nil, nil), v2...); code != 204 || r.WAL().Len() != 0 {
		t.Fatalf("empty request = %d %q, log %d; want 204 and nothing stored", code, msg, r.WAL().Len())
	}
	if r.mem.inUse() != 0 {
		t.Fatalf("%d bytes of the budget still held", r.mem.inUse())
	}
}

// A full log refuses remote writes with 429 and Retry-After, and 2.0
// answers then say nothing was written.
func TestRemoteWriteFullLog(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.WAL.SegmentBytes = 64 << 10
	cfg.WAL.MaxBytes = 256 << 10
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	r := start(t, cfg)
	ts := time.Now().UnixMilli()
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("the log never filled")
		}
		var series []rwSeries
		for j := range 100 {
			series = append(series, rwSeries{labels: [][2]string{{"__name__", "full"}, {"i", fmt.Sprint(i*100 + j)}}, values: []float64{1}, times: []int64{ts}})
		}
		req, _ := http.NewRequest(http.MethodPost, r.base+WritePath, bytes.NewReader(rwBody(2, series)))
		h := rwHeaders(2)
		for k := 0; k < len(h); k += 2 {
			req.Header.Set(h[k], h[k+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written") != "0" {
				t.Fatalf("429 headers %v; want Retry-After and Samples-Written 0", resp.Header)
			}
			break
		}
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written") != "100" {
			t.Fatalf("push %d: %s %v", i, resp.Status, resp.Header)
		}
	}
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="wal_full"}`); n != 1 {
		t.Fatalf("wal_full = %v; want 1", n)
	}
}

// The decompressed message and the converted lines are taken from
// import.max_inflight_bytes: with the budget held by a slow import, a
// small remote write body that decompresses to more than is left gets
// 429, and the same request is taken once the budget is free; a request
// that needs more than the whole budget gets 413. Tokens are asked for
// as on imports.
func TestRemoteWriteBudgetAndToken(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxInflightBytes = 64 << 10
	cfg.Import.MaxDecompressedBytes = 1 << 20
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.BearerTokensFile = tokens
	r := start(t, cfg)
	now := time.Now().UnixMilli()
	// 40KB of metadata, which takes memory to decompress and none once
	// converted, and one series.
	small := rwSeries{labels: [][2]string{{"__name__", "m"}}, values: []float64{1}, times: []int64{now}}
	msg, err := snappy.Decode(nil, rwBody(1, []rwSeries{small}))
	if err != nil {
		t.Fatal(err)
	}
	metadata := snappy.Encode(nil, append(rwMsg(nil, 3, rwStr(nil, 4, strings.Repeat("a", 40000))), msg...))
	// Ten lines of 4KB each: 40KB to decompress and 40KB of lines.
	var series []rwSeries
	for i := range 10 {
		series = append(series, rwSeries{labels: [][2]string{{"__name__", "m"}, {"i", fmt.Sprint(i)}, {"pad", strings.Repeat("a", 4000)}},
			values: []float64{1}, times: []int64{now}})
	}
	big := rwBody(1, series)
	if len(big) > minChunk || len(metadata) > minChunk {
		t.Fatalf("bodies of %d and %d bytes; want each in one chunk", len(big), len(metadata))
	}
	h := append(rwHeaders(1), "Authorization", "Bearer secret")
	if code, msg := push(t, nil, r.base+WritePath, metadata, rwHeaders(1)...); code != 401 {
		t.Fatalf("without a token: %d %q; want 401", code, msg)
	}
	// 12KiB of a body sent, the relay holds 4+8+16KiB for it.
	slow, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := fmt.Fprintf(slow, "POST %s HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer secret\r\nContent-Length: 60000\r\n\r\n%s",
		ImportPath, strings.Repeat("a", 12<<10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow import holding 28KiB", 5*time.Second, func() bool {
		return r.metric(t, "procfleet_relay_inflight_bytes") >= 28<<10
	})
	code, body := push(t, nil, r.base+WritePath, metadata, h...)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "max_inflight_bytes") {
		t.Fatalf("with the budget held: %d %q; want 429 naming import.max_inflight_bytes", code, body)
	}
	slow.Close()
	waitFor(t, "the budget free", 5*time.Second, func() bool { return r.mem.inUse() == 0 })
	if code, body := push(t, nil, r.base+WritePath, metadata, h...); code != http.StatusNoContent {
		t.Fatalf("with the budget free: %d %q; want 204", code, body)
	}
	if code, body := push(t, nil, r.base+WritePath, big, h...); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "send fewer samples") {
		t.Fatalf("a request over the whole budget: %d %q; want 413", code, body)
	}
	if r.WAL().Len() != 1 || r.mem.inUse() != 0 {
		t.Fatalf("log %d records, %d bytes of the budget held; want 1 and 0", r.WAL().Len(), r.mem.inUse())
	}
}

// FuzzRemoteWrite sends hostile remote write bodies, snappy-compressed
// as they are or raw, through the handler: the answer is 204, 400, 413
// or 429, never a crash; a refusal stores nothing and leaves no memory of
// the budget held.
func FuzzRemoteWrite(f *testing.F) {
	ts := time.Now().UnixMilli()
	good := []rwSeries{{labels: [][2]string{{"__name__", "m"}, {"a", "b"}}, values: []float64{1, 2}, times: []int64{ts, ts + 1}}}
	f.Add(rwBody(1, good), false, false)
	f.Add(rwBody(2, good), true, false)
	msg, _ := snappy.Decode(nil, rwBody(2, good))
	f.Add(msg, true, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, false, false)
	cfg := testConfig(f, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxDecompressedBytes = 256 << 10
	r := start(f, cfg)
	h := r.handler()
	f.Fuzz(func(t *testing.T, body []byte, v2, compressIt bool) {
		if compressIt {
			body = snappy.Encode(nil, body)
		}
		req := httptest.NewRequest(http.MethodPost, WritePath, bytes.NewReader(body))
		version := 1
		if v2 {
			version = 2
		}
		hd := rwHeaders(version)
		for i := 0; i < len(hd); i += 2 {
			req.Header.Set(hd[i], hd[i+1])
		}
		before := r.WAL().Len()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		stored := r.WAL().Len() - before
		switch w.Code {
		case http.StatusNoContent:
			if stored > 1 {
				t.Fatalf("204 stored %d records", stored)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			if stored != 0 || w.Body.Len() == 0 {
				t.Fatalf("%d stored %d records, message %q; want none stored and a message", w.Code, stored, w.Body.String())
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if n := r.mem.inUse(); n != 0 {
			t.Fatalf("%d bytes of the budget held after the answer", n)
		}
	})
}
