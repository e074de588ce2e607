package scrape

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/prom/labels"
)

// TestPhase checks the phase function: the same for a key everywhere,
// within the interval, in whole milliseconds, and spread: 10,000 keys
// fill ten buckets of a 10 s interval within 10% of a tenth each.
func TestPhase(t *testing.T) {
	const interval = 10 * time.Second
	if p, q := Phase("node\x00http://h:9100/metrics", interval), Phase("node\x00http://h:9100/metrics", interval); p != q || Phase("a", 0) != 0 {
		t.Fatalf("Phase gave %s and %s for one key", p, q)
	}
	var buckets [10]int
	for i := range 10000 {
		p := Phase(fmt.Sprintf("node\x00http://10.0.%d.%d:9100/metrics", i/250, i%250), interval)
		if p < 0 || p >= interval || p%time.Millisecond != 0 {
			t.Fatalf("Phase = %s; want whole milliseconds in [0, %s)", p, interval)
		}
		buckets[p*10/interval]++
	}
	for i, n := range buckets {
		if n < 900 || n > 1100 {
			t.Fatalf("bucket %d holds %d of 10000 phases: %v", i, n, buckets)
		}
	}
}

// TestNextInstant checks the schedule: the first instant after now at
// the phase, on the wall clock's grid of the interval.
func TestNextInstant(t *testing.T) {
	base := time.Unix(1700000000, 0) // a multiple of 10 s
	for _, c := range []struct {
		now, phase, want time.Duration
	}{
		{0, 3 * time.Second, 3 * time.Second},
		{3 * time.Second, 3 * time.Second, 13 * time.Second},
		{2999 * time.Millisecond, 3 * time.Second, 3 * time.Second},
		{9 * time.Second, 3 * time.Second, 13 * time.Second},
		{4 * time.Second, 0, 10 * time.Second},
	} {
		got := nextInstant(base.Add(c.now), 10*time.Second, c.phase)
		if want := base.Add(c.want); !got.Equal(want) {
			t.Errorf("nextInstant(+%s, phase %s) = +%s; want +%s", c.now, c.phase, got.Sub(base), c.want)
		}
	}
}

// TestTargetFromLabels checks Prometheus' semantics on discovered labels
// after relabeling (the oracle in internal/promoracle compares with
// Prometheus' PopulateLabels on many more).
func TestTargetFromLabels(t *testing.T) {
	job := testJob("node", time.Minute)
	job.Params = map[string][]string{"module": {"a", "b"}, "x": {"1"}}
	cases := []struct {
		name, err string
		in        []string // after DiscoveredLabels unless raw
		raw       bool
		url       string
		labels    string
		interval  time.Duration
	}{
		{name: "defaults", in: []string{AddressLabel, "h:9100", "zone", "a", "__meta_x", "m"},
			url: "http://h:9100/metrics?module=a&module=b&x=1", labels: `{instance="h:9100", job="node", zone="a"}`, interval: time.Minute},
		{name: "no port added", in: []string{AddressLabel, "h"},
			url: "http://h/metrics?module=a&module=b&x=1", labels: `{instance="h", job="node"}`, interval: time.Minute},
		{name: "relabeled", in: []string{AddressLabel, "h:1", SchemeLabel, "https", MetricsPathLabel, "/m", ParamLabelPrefix + "module", "c",
			ParamLabelPrefix + "y", "2", ScrapeIntervalLabel, "30s", ScrapeTimeoutLabel, "5s", InstanceLabel, "db-1", JobLabel, "other"},
			url: "https://h:1/m?module=c&module=b&x=1&y=2", labels: `{instance="db-1", job="other"}`, interval: 30 * time.Second},
		{name: "no address", in: []string{"zone", "a"}, err: "no address"},
		{name: "slash in address", in: []string{AddressLabel, "h:1/x"}, err: "not a valid hostname"},
		{name: "bad interval", in: []string{AddressLabel, "h:1", ScrapeIntervalLabel, "1.5s"}, err: "error parsing scrape interval"},
		{name: "zero timeout", in: []string{AddressLabel, "h:1", ScrapeTimeoutLabel, "0s"}, err: "scrape timeout cannot be 0"},
		{name: "timeout over interval", in: []string{AddressLabel, "h:1", ScrapeTimeoutLabel, "2m"}, err: "cannot be greater than scrape interval"},
		{name: "no scheme", raw: true, in: []string{AddressLabel, "h:1", ScrapeIntervalLabel, "1m", ScrapeTimeoutLabel, "1m"}, err: "scheme"},
		{name: "invalid value", in: []string{AddressLabel, "h:1", "zone", "\xff"}, err: "invalid label value"},
	}
	for _, c := range cases {
		ls := labels.FromStrings(c.in...)
		if !c.raw {
			ls = DiscoveredLabels(job, ls)
		}
		tg, err := TargetFromLabels(job, ls)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v; want one with %q", c.name, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case tg.URL().String() != c.url || tg.Labels.String() != c.labels || tg.Interval != c.interval:
			t.Errorf("%s: %s %s %s; want %s %s %s", c.name, tg.URL(), tg.Labels, tg.Interval, c.url, c.labels, c.interval)
		}
	}
}

// TestTargetKey checks that targets differing in job, URL or labels have
// different keys, and that the job's other settings do not count.
func TestTargetKey(t *testing.T) {
	a := target(t, testJob("a", time.Second), "http://h:1/metrics")
	same := target(t, testJob("a", 2*time.Second), "http://h:1/metrics")
	same.Job.SampleLimit = 5
	keys := map[string]bool{a.Key(): true}
	for _, o := range []Target{
		target(t, testJob("b", time.Second), "http://h:1/metrics"),
		target(t, testJob("a", time.Second), "http://h:2/metrics"),
		target(t, testJob("a", time.Second), "http://h:1/metrics?x=1"),
		target(t, testJob("a", time.Second), "http://h:1/metrics", "zone", "b"),
	} {
		if keys[o.Key()] {
			t.Fatalf("key %q repeated", o.Key())
		}
		keys[o.Key()] = true
	}
	if same.Key() != a.Key() {
		t.Fatalf("keys differ with the job's settings: %q, %q", a.Key(), same.Key())
	}
}
