package main

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestTargetsServeNewValues: a target answers Prometheus text with its
// series (gzip when asked), new values on every scrape, and counts the
// scrape for the scraper its User-Agent names.
func TestTargetsServeNewValues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tg, err := startTargets(ctx, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(ua string, gz bool) []string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+tg.addrs()[1]+"/metrics", nil)
		req.Header.Set("User-Agent", ua)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if gz {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
			}
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		var samples []string
		for line := range strings.Lines(string(b)) {
			if !strings.HasPrefix(line, "#") {
				samples = append(samples, strings.TrimSpace(line))
			}
		}
		return samples
	}
	a, b := scrape("procfleet", true), scrape("vm_promscrape", false)
	if len(a) != 100 || len(b) != 100 {
		t.Fatalf("%d and %d samples, want 100 each", len(a), len(b))
	}
	for i := range a {
		sa, va, _ := strings.Cut(a[i], "} ")
		sb, vb, _ := strings.Cut(b[i], "} ")
		if sa != sb || va == vb || !strings.Contains(sa, `shard="1"`) {
			t.Fatalf("sample %d: %q then %q; want the same series with a new value", i, a[i], b[i])
		}
	}
	if tg.procfleet.Load() != 1 || tg.vmagent.Load() != 1 {
		t.Fatalf("scrapes counted procfleet %d vmagent %d, want 1 and 1", tg.procfleet.Load(), tg.vmagent.Load())
	}
}

// TestOwnProcStats: this process's CPU and memory read from /proc.
func TestOwnProcStats(t *testing.T) {
	for i := 0; i < 1e7; i++ {
		_ = strings.Repeat("x", i%3)
	}
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Fatalf("cpuSeconds = %v, %v; want > 0", cpu, err)
	}
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("memStatus = %d, %d, %v; want 0 < VmRSS <= VmHWM", rss, hwm, err)
	}
}
