package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// Every record carries one component, set where its logger is made, and
// is valid JSON: the agent takes a base logger without one, as the
// command gives it, and its parts log through it.
func TestLogOneComponentPerRecord(t *testing.T) {
	var log testenv.JSONLog
	cfg := fixtureConfig(t, deadUpstream, "log-host")
	cfg.ProcfsRoot = t.TempDir() // nothing to read: the generators fail, and the scheduler says so
	cfg.Spool.Dir = t.TempDir()  // the spool logs its recovery
	a, err := New(cfg, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	want := []string{"agent", "scheduler", "ship", "spool"}
	var seen []string
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < len(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		seen = components(t, &log)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recs := log.Records(t) // fails on a key written twice
	for _, r := range recs {
		if _, ok := r["component"].(string); !ok {
			t.Errorf("record without a component: %v", r)
		}
	}
	if seen = components(t, &log); !slices.Equal(seen, want) {
		t.Errorf("components logging: %v, want %v", seen, want)
	}
}

// components returns the components that logged so far, sorted.
func components(t *testing.T, log *testenv.JSONLog) []string {
	var out []string
	for _, r := range log.Records(t) {
		if c, ok := r["component"].(string); ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// /metrics lists its series in the same order on every scrape, so that a
// diff of two scrapes shows what changed.
func TestMetricsStableOrder(t *testing.T) {
	a, _ := runAgent(t, fixtureConfig(t, deadUpstream, "order-host"))
	var first []string
	for i := range 8 {
		_, body := get(t, "http://"+a.Addr()+"/metrics")
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			got = append(got, l[:strings.LastIndexByte(l, ' ')])
		}
		if i == 0 {
			first = got
			continue
		}
		// Series may appear between scrapes; those in both keep their order.
		a, b := only(first, got), only(got, first)
		if d := firstDiff(a, b); d >= 0 {
			t.Fatalf("scrape %d lists the series in another order than the first: series %d is %s, was %s", i+1, d, b[d], a[d])
		}
	}
}

// only returns the elements of xs that ys holds too, in xs' order.
func only(xs, ys []string) []string {
	var out []string
	for _, x := range xs {
		if slices.Contains(ys, x) {
			out = append(out, x)
		}
	}
	return out
}

// firstDiff returns the first index at which a and b differ, -1 if none.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
