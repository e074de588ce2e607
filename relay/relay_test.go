package relay

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// Bodies pushed to the relay, gzip and plain, reach a real VictoriaMetrics
// unchanged, with the extra labels of their request; a line without a
// timestamp gets the time the relay took it, not the time it was
// forwarded.
func TestRelayToVictoriaMetrics(t *testing.T) {
	vm := testenv.StartVM(t)
	defer func(d time.Duration) { selfInterval = d }(selfInterval)
	selfInterval = 200 * time.Millisecond
	cfg := testConfig(t, vm.ImportURL)
	cfg.Node = "relay-self"
	r := start(t, cfg)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	code, msg := push(t, nil, r.url+"?extra_label=instance%3Dh1&extra_label=job%3Dprocfleet",
		testenv.Gzip(t, fmt.Sprintf("# HELP relay_a a\nrelay_a{x=\"1\"} 1.5 %d\nrelay_a{x=\"2\"} 2.5 %d\n", ts, ts)),
		"Content-Encoding", "gzip")
	if code != http.StatusNoContent {
		t.Fatalf("gzip push = %d %q; want 204", code, msg)
	}
	before := time.Now().UnixMilli()
	code, msg = push(t, nil, r.url+"?extra_label=instance%3Dh2", []byte("relay_b 7\n"))
	if code != http.StatusNoContent {
		t.Fatalf("plain push = %d %q; want 204", code, msg)
	}
	after := time.Now().UnixMilli()
	// zstd, as agents with compress.encoding zstd send it.
	code, msg = push(t, nil, r.url+"?extra_label=instance%3Dh3",
		zstdOf(t, fmt.Sprintf("relay_c{y=\"z\"} 9.25 %d\n", ts)), "Content-Encoding", "zstd")
	if code != http.StatusNoContent {
		t.Fatalf("zstd push = %d %q; want 204", code, msg)
	}
	var got map[string]testenv.Series
	waitFor(t, "4 series in VictoriaMetrics", 20*time.Second, func() bool {
		_, _ = vm.TryFlush()
		ss, err := vm.TryExport(`{__name__=~"relay_a|relay_b|relay_c"}`)
		if err != nil || len(ss) != 4 {
			return false
		}
		got = map[string]testenv.Series{}
		for _, s := range ss {
			got[s.Key()] = s
		}
		return true
	})
	check := func(key string, v float64, from, to int64) {
		t.Helper()
		s, ok := got[key]
		if !ok {
			t.Fatalf("series %s missing; have %v", key, got)
		}
		if len(s.Values) != 1 || s.Values[0] != v || s.Timestamps[0] < from || s.Timestamps[0] > to {
			t.Fatalf("%s = %v at %v; want %v once between %d and %d", key, s.Values, s.Timestamps, v, from, to)
		}
	}
	check(testenv.SeriesKey("relay_a", map[string]string{"x": "1", "instance": "h1", "job": "procfleet"}), 1.5, ts, ts)
	check(testenv.SeriesKey("relay_a", map[string]string{"x": "2", "instance": "h1", "job": "procfleet"}), 2.5, ts, ts)
	check(testenv.SeriesKey("relay_b", map[string]string{"instance": "h2"}), 7, before, after)
	check(testenv.SeriesKey("relay_c", map[string]string{"y": "z", "instance": "h3"}), 9.25, ts, ts)
	waitFor(t, "the log emptied", 5*time.Second, func() bool { return r.WAL().Len() == 0 })
	if n := r.metric(t, "procfleet_relay_received_samples_total"); n != 4 {
		t.Fatalf("received samples = %v; want 4", n)
	}
	// The relay's own metrics reach VictoriaMetrics through its log.
	waitFor(t, "the relay's own metrics in VictoriaMetrics", 20*time.Second, func() bool {
		_, _ = vm.TryFlush()
		ss, err := vm.TryExport(`procfleet_relay_received_samples_total{instance="relay-self",job="procfleet"}`)
		return err == nil && len(ss) == 1 && ss[0].Values[len(ss[0].Values)-1] == 4
	})
}

// zstdWideWindow is a zstd frame whose header asks for a 64MiB window
// (window descriptor 0x80: exponent 16, 2^(10+16) bytes), holding "a 1\n"
// in one raw block: valid, but over what the relay holds for a body.
const zstdWideWindow = "\x28\xb5\x2f\xfd\x00\x80\x21\x00\x00a 1\n"

// zstdOf compresses text as one zstd frame, with the encoder's options.
func zstdOf(t testing.TB, text string, opts ...zstd.EOption) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every refusal has its status and reason, names what is wrong, and
// stores nothing.
func TestImportRefusals(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxDecompressedBytes = 1 << 20
	cfg.Import.MaxLineBytes = 4 << 10
	cfg.Ship.ProbeInterval = config.Duration(time.Hour)
	r := start(t, cfg)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	lines := bytes.Repeat([]byte("bomb 1\n"), 1<<16)
	for range 16 { // 7 MiB of valid lines, about 8 KiB compressed
		_, _ = zw.Write(lines)
	}
	_ = zw.Close()
	var zstdBomb bytes.Buffer
	zs, _ := zstd.NewWriter(&zstdBomb, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	for range 16 {
		_, _ = zs.Write(lines)
	}
	_ = zs.Close()
	cases := []struct {
		name   string
		method string
		query  string
		body   []byte
		header []string
		code   int
		reason string
		msg    string
	}{
		{"bad line", "POST", "", []byte("ok 1\n# c\nbad{ 2\n"), nil, 400, reasonBadLine, "line 3"},
		{"bad gzip line", "POST", "", testenv.Gzip(t, "ok 1\nok{a=\"b\"} x\n"), []string{"Content-Encoding", "gzip"}, 400, reasonBadLine, "line 2"},
		{"corrupt gzip", "POST", "", []byte("\x1f\x8b\x08garbage"), []string{"Content-Encoding", "gzip"}, 400, reasonBadGzip, "gzip"},
		{"body too large", "POST", "", bytes.Repeat([]byte("a 1\n"), 20<<10), nil, 413, reasonTooLarge, "max_body_bytes"},
		{"gzip bomb", "POST", "", bomb.Bytes(), []string{"Content-Encoding", "gzip"}, 413, reasonTooLarge, "max_decompressed_bytes"},
		{"encoding", "POST", "", []byte("a 1\n"), []string{"Content-Encoding", "br"}, 415, reasonEncoding, `"br"`},
		{"bad zstd line", "POST", "", zstdOf(t, "ok 1\nok{a=\"b\"} x\n"), []string{"Content-Encoding", "zstd"}, 400, reasonBadLine, "line 2"},
		{"corrupt zstd", "POST", "", []byte("\x28\xb5\x2f\xfdgarbage"), []string{"Content-Encoding", "zstd"}, 400, reasonBadZstd, "zstd"},
		{"zstd bomb", "POST", "", zstdBomb.Bytes(), []string{"Content-Encoding", "zstd"}, 413, reasonTooLarge, "max_decompressed_bytes"},
		{"zstd window", "POST", "", []byte(zstdWideWindow), []string{"Content-Encoding", "zstd"}, 400, reasonBadZstd, "window"},
		{"method", "GET", "", nil, nil, 405, reasonMethod, "POST"},
		{"query arg", "POST", "?db=x", []byte("a 1\n"), nil, 400, reasonQuery, `"db"`},
		{"extra_label", "POST", "?extra_label=bad", []byte("a 1\n"), nil, 400, reasonQuery, "extra_label"},
		{"timestamp", "POST", "?timestamp=1.5", []byte("a 1\n"), nil, 400, reasonQuery, "timestamp"},
		{"extra_label __name__", "POST", "?extra_label=__name__%3Dx", []byte("a 1\n"), nil, 400, reasonQuery, "rename every series"},
		{"extra_label twice", "POST", "?extra_label=a%3D1&extra_label=a%3D2", []byte("a 1\n"), nil, 400, reasonQuery, "given twice"},
		{"timestamp 0", "POST", "?timestamp=0", []byte("a 1\n"), nil, 400, reasonQuery, "timestamp 0 is not accepted"},
		{"timestamp negative", "POST", "?timestamp=-1700000000000", []byte("a 1\n"), nil, 400, reasonQuery, "not accepted"},
		{"timestamp in seconds", "POST", "?timestamp=1700000000", []byte("a 1\n"), nil, 400, reasonQuery, "from 946684800000 (2000-01-01)"},
		{"timestamp far ahead", "POST", fmt.Sprintf("?timestamp=%d", time.Now().Add(72*time.Hour).UnixMilli()), []byte("a 1\n"), nil, 400, reasonQuery, "two days ahead"},
	}
	if bomb.Len() > int(cfg.Import.MaxBodyBytes) {
		t.Fatalf("bomb is %d bytes compressed, over max_body_bytes; the test would not reach the decompressor", bomb.Len())
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := r.metric(t, `procfleet_relay_rejected_total{reason="`+c.reason+`"}`)
			req, _ := http.NewRequest(c.method, r.url+c.query, bytes.NewReader(c.body))
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || !strings.Contains(b.String(), c.msg) {
				t.Fatalf("%d %q; want %d with %q", resp.StatusCode, b.String(), c.code, c.msg)
			}
			if after := r.metric(t, `procfleet_relay_rejected_total{reason="`+c.reason+`"}`); after != before+1 {
				t.Fatalf("rejected{reason=%q} went %v -> %v; want +1", c.reason, before, after)
			}
		})
	}
	if n := r.WAL().Len(); n != 0 {
		t.Fatalf("the log holds %d records after refusals only; want 0", n)
	}
	// An empty body is fine and stores nothing.
	if code, msg := push(t, nil, r.url, nil); code != 204 || r.WAL().Len() != 0 {
		t.Fatalf("empty body = %d %q, log %d; want 204 and nothing stored", code, msg, r.WAL().Len())
	}
}

// With a token file, an import without a known token gets 401; the file
// is read again when it changes.
func TestBearerTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# agents\nsecret-1\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Auth.BearerTokensFile = file
	r := start(t, cfg)
	body := []byte("a 1\n")
	for _, c := range []struct {
		header []string
		code   int
	}{
		{nil, 401},
		{[]string{"Authorization", "Bearer wrong"}, 401},
		{[]string{"Authorization", "Basic c2VjcmV0LTE="}, 401},
		{[]string{"Authorization", "Bearer secret-1"}, 204},
	} {
		if code, msg := push(t, nil, r.url, body, c.header...); code != c.code {
			t.Fatalf("%v: %d %q; want %d", c.header, code, msg, c.code)
		}
	}
	if resp, err := http.Get(r.base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz without a token: %v %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	// Rotate: secret-2 replaces secret-1.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(file, []byte("secret-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new token accepted", 5*time.Second, func() bool {
		code, _ := push(t, nil, r.url, body, "Authorization", "Bearer secret-2")
		return code == 204
	})
	if code, _ := push(t, nil, r.url, body, "Authorization", "Bearer secret-1"); code != 401 {
		t.Fatalf("revoked token: %d; want 401", code)
	}
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="unauthorized"}`); n < 4 {
		t.Fatalf("unauthorized = %v; want at least 4", n)
	}
}

// A full log refuses with 429 and Retry-After; what was accepted is
// delivered once the upstream is back, and then the relay takes data
// again.
func TestFullLogRefusesThenRecovers(t *testing.T) {
	vm := testenv.StartVM(t)
	vm.Kill()
	cfg := testConfig(t, vm.ImportURL)
	cfg.WAL.SegmentBytes = 64 << 10
	cfg.WAL.MaxBytes = 256 << 10
	cfg.Import.MaxBodyBytes = 64 << 10
	r := start(t, cfg)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	accepted := 0
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("the log never filled")
		}
		var b strings.Builder
		for j := range 100 {
			fmt.Fprintf(&b, "relay_full{i=\"%d\"} %d %d\n", i*100+j, j, ts)
		}
		code, msg := push(t, nil, r.url, []byte(b.String()))
		if code == http.StatusTooManyRequests {
			if !strings.Contains(msg, "full") {
				t.Fatalf("429 says %q; want it to say the log is full", msg)
			}
			break
		}
		if code != http.StatusNoContent {
			t.Fatalf("push %d: %d %q", i, code, msg)
		}
		accepted += 100
	}
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="wal_full"}`); n != 1 {
		t.Fatalf("wal_full = %v; want 1", n)
	}
	vm.Restart(t)
	waitFor(t, "the log drained", 30*time.Second, func() bool { return r.WAL().Len() == 0 })
	waitFor(t, "every accepted sample in VictoriaMetrics", 30*time.Second, func() bool {
		_, _ = vm.TryFlush()
		ss, err := vm.TryExport(`relay_full`)
		return err == nil && len(ss) == accepted
	})
	if code, msg := push(t, nil, r.url, []byte("relay_full_after 1\n")); code != 204 {
		t.Fatalf("after the drain: %d %q; want 204", code, msg)
	}
}
