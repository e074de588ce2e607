package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/targets"
	"github.com/procfleet/procfleet/config"
)

// ownFixture is a job of n targets at a 1s interval, published.
func ownFixture(n int) ([]config.ScrapeConfig, publishedSets) {
	job := config.DefaultScrapeConfig()
	job.JobName = "fleet"
	job.ScrapeInterval, job.ScrapeTimeout = config.PromDuration(time.Second), config.PromDuration(time.Second)
	var ts []targets.Target
	for i := range n {
		ts = append(ts, targets.Target{Address: fmt.Sprintf("10.%d.%d.%d:9100", i>>16, i>>8&255, i&255), Labels: []targets.Label{
			{Name: "__metrics_path__", Value: "/metrics"}, {Name: "__scheme__", Value: "http"},
			{Name: "__scrape_interval__", Value: "1s"}, {Name: "__scrape_timeout__", Value: "1s"}, {Name: "job", Value: "fleet"}}})
	}
	return []config.ScrapeConfig{job}, publishedSets{"fleet": {sha: "x", targets: ts}}
}

// TestOwnHandover moves targets from a to a newcomer b: a keeps scraping
// them (lingering) until b's gossip names exactly the set a computes for
// b, or until 2 intervals passed; either way they are then given up once.
// A target of a member that is gone is taken without waiting.
func TestOwnHandover(t *testing.T) {
	jobs, pubs := ownFixture(40)
	a, b := targets.Member{Name: "a"}, targets.Member{Name: "b"}
	now := time.Unix(1_800_000_000, 0)
	in := ownInput{node: "a", rev: 1, jobs: jobs, pubs: pubs, agents: []targets.Member{a}, now: now}
	var s scraping
	if out := s.own(in); len(out.targets) != 40 || out.owned != 40 || len(out.cluster) != 40 {
		t.Fatalf("alone: %d targets, %d owned, %d cluster keys; want 40", len(out.targets), out.owned, len(out.cluster))
	}
	for _, gossiped := range []bool{false, true} {
		s2 := s
		in2 := in
		in2.agents = []targets.Member{a, b}
		out := s2.own(in2)
		moved := 40 - out.owned
		if moved < 10 || out.lingering != moved || len(out.targets) != 40 || out.given != 0 {
			t.Fatalf("b joined: owned %d, lingering %d, scraped %d, given %d", out.owned, out.lingering, len(out.targets), out.given)
		}
		if !s2.wake.Equal(now.Add(2 * time.Second)) {
			t.Fatalf("wake at %v, want 2 intervals after the move", s2.wake)
		}
		// What b computes for itself, as it gossips it.
		var sb scraping
		outB := sb.own(ownInput{node: "b", rev: 1, jobs: jobs, pubs: pubs, agents: []targets.Member{a, b}, now: now})
		in2.now = now.Add(time.Second)
		if gossiped {
			in2.scraped = map[string]string{"b": scrapedDigest(outB.cluster)}
		} else {
			in2.scraped = map[string]string{"b": scrapedDigest(outB.cluster[1:])} // b has not scraped one yet
		}
		out = s2.own(in2)
		if gossiped && (out.lingering != 0 || out.given != moved || len(out.targets) != 40-moved) {
			t.Fatalf("b gossiped its set: lingering %d, given %d, scraped %d; want 0, %d, %d", out.lingering, out.given, len(out.targets), moved, 40-moved)
		}
		if !gossiped && (out.lingering != moved || out.given != 0) {
			t.Fatalf("b has not scraped all: lingering %d, given %d; want %d, 0", out.lingering, out.given, moved)
		}
		in2.now = now.Add(2 * time.Second)
		out = s2.own(in2)
		if out.lingering != 0 || len(out.targets) != 40-moved {
			t.Fatalf("2 intervals after the move: lingering %d, scraped %d", out.lingering, len(out.targets))
		}
	}
	// b alone takes a's targets at once: a is gone, nothing lingers on b.
	var sb scraping
	sb.own(ownInput{node: "b", rev: 1, jobs: jobs, pubs: pubs, agents: []targets.Member{a, b}, now: now})
	out := sb.own(ownInput{node: "b", rev: 1, jobs: jobs, pubs: pubs, agents: []targets.Member{b}, now: now})
	if len(out.targets) != 40 || out.lingering != 0 {
		t.Fatalf("b after a left: %d targets, %d lingering", len(out.targets), out.lingering)
	}
}

// BenchmarkOwn measures a member's computation of what it scrapes, for
// 100,000 published targets over 10 agents (after any change of members,
// sets or config).
func BenchmarkOwn(b *testing.B) {
	jobs, pubs := ownFixture(100000)
	var agents []targets.Member
	for i := range 10 {
		agents = append(agents, targets.Member{Name: fmt.Sprintf("a%d", i)})
	}
	in := ownInput{node: "a0", rev: 1, jobs: jobs, pubs: pubs, agents: agents, now: time.Unix(1_800_000_000, 0)}
	b.ReportAllocs()
	for b.Loop() {
		var s scraping
		if out := s.own(in); out.owned < 9000 {
			b.Fatalf("owned %d", out.owned)
		}
	}
}
