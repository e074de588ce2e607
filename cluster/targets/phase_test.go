package targets

import (
	"fmt"
	"testing"
	"time"
)

// TestPhaseSpread: phases lie in [0, interval), in whole milliseconds,
// and spread evenly over the interval.
func TestPhaseSpread(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		interval time.Duration
		n        int
	}{
		{10 * time.Second, 20000},
		{time.Second, 20000},
		{15 * time.Second, 20000},
		{500 * time.Microsecond, 20000},
	} {
		const buckets = 20
		var count [buckets]int
		for _, id := range targetIDs(c.n, "node") {
			p := Phase(id, c.interval)
			if p < 0 || p >= c.interval {
				t.Fatalf("Phase(%q, %v) = %v, outside [0, interval)", id, c.interval, p)
			}
			if c.interval >= time.Millisecond && p%time.Millisecond != 0 {
				t.Fatalf("Phase(%q, %v) = %v, not whole milliseconds", id, c.interval, p)
			}
			count[int(int64(p)*buckets/int64(c.interval))]++
		}
		ideal := float64(c.n) / buckets
		lo, hi := c.n, 0
		for _, n := range count {
			lo, hi = min(lo, n), max(hi, n)
		}
		t.Logf("interval %v, %d targets in %d slices of the interval: %d to %d per slice (ideal %.0f)", c.interval, c.n, buckets, lo, hi, ideal)
		// 1000 per slice: sd 31, so 10% is more than 3 sd.
		if float64(lo) < 0.9*ideal || float64(hi) > 1.1*ideal {
			t.Errorf("interval %v: %d to %d per slice, want within 10%% of %.0f", c.interval, lo, hi, ideal)
		}
	}
}

// TestPhaseIndependentOfOwner: a member's targets are spread over the
// interval too, not bunched.
func TestPhaseIndependentOfOwner(t *testing.T) {
	t.Parallel()
	refs := uniformRefs(20000)
	r, err := Assign(DefaultConfig(), memberNames(4), refs)
	if err != nil {
		t.Fatal(err)
	}
	const buckets = 10
	count := map[string]*[buckets]int{}
	for i, ref := range refs {
		if count[r.Owners[i]] == nil {
			count[r.Owners[i]] = new([buckets]int)
		}
		count[r.Owners[i]][int(Phase(ref.ID, time.Second)*buckets/time.Second)]++
	}
	for m, c := range count {
		lo, hi := c[0], c[0]
		for _, n := range c {
			lo, hi = min(lo, n), max(hi, n)
		}
		// ~500 per slice: sd 21, 15% is 3.5 sd.
		if float64(hi) > 1.15*float64(lo+hi)/2 || float64(lo) < 0.85*float64(lo+hi)/2 {
			t.Errorf("%s: %v per tenth of the interval", m, c)
		}
	}
}

// TestPhasePinned: every procfleet version gives the same phases, so that
// members of different versions scrape a target at the same instants.
func TestPhasePinned(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id       string
		interval time.Duration
		want     time.Duration
	}{
		{Target{Address: "10.0.0.1:9100"}.ID("node"), 15 * time.Second, 5686 * time.Millisecond},
		{Target{Address: "10.0.0.1:9100"}.ID("node"), time.Minute, 35686 * time.Millisecond},
		{Target{Address: "db-1:9187"}.ID("postgres"), 10 * time.Second, 5657 * time.Millisecond},
		{"x", 100 * time.Microsecond, 18443 * time.Nanosecond},
		{"x", 0, 0},
		{"x", -time.Second, 0},
	} {
		if got := Phase(c.id, c.interval); got != c.want {
			t.Errorf("Phase(%q, %v) = %v, want %v", c.id, c.interval, got, c.want)
		}
	}
}

func TestNextScrape(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		after    time.Time
		interval time.Duration
	}{
		{time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), 15 * time.Second},
		{time.Date(2026, 5, 1, 12, 0, 7, 123456789, time.UTC), 10 * time.Second},
		{time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC), time.Minute},
		{time.Unix(0, 0), time.Second},
		{time.Unix(1, 999999), 250 * time.Microsecond},
	} {
		for _, id := range targetIDs(50, "node") {
			p := Phase(id, c.interval)
			next := NextScrape(c.after, id, c.interval)
			d := next.Sub(c.after)
			if d <= 0 || d > c.interval {
				t.Fatalf("NextScrape(%v, %q, %v) = %v, %v after", c.after, id, c.interval, next, d)
			}
			if r := next.UnixNano() % int64(c.interval); (r+int64(c.interval))%int64(c.interval) != int64(p) {
				t.Fatalf("NextScrape(%v, %q, %v) = %v, off phase %v by %v", c.after, id, c.interval, next, p, time.Duration(r)-p)
			}
			// At the tick itself, the next one is a whole interval on.
			if again := NextScrape(next, id, c.interval); again.Sub(next) != c.interval {
				t.Fatalf("NextScrape at a tick %v: %v", next, again)
			}
		}
	}
	if at := time.Unix(5, 0); !NextScrape(at, "x", 0).Equal(at) {
		t.Error("NextScrape with interval 0 moved")
	}
}

// A target's phase is the same on every member; its scrapes fall on the
// Unix times whose remainder by the interval is the phase.
func ExamplePhase() {
	id := Target{Address: "db-1:9187", Labels: []Label{{"env", "prod"}}}.ID("postgres")
	p := Phase(id, 15*time.Second)
	after := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	fmt.Println(p, NextScrape(after, id, 15*time.Second).Format(time.TimeOnly+".000"))
	// Output: 1.613s 12:00:01.613
}
