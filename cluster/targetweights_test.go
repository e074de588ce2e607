package cluster

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/cluster/targets"
)

// TestWeightWriter: a member publishes the class of each placement
// cluster target it scraped successfully, held back while the count stays
// between the neighbouring classes, kept through a failed scrape; a
// target it handed over keeps its class until the new owner publishes
// one, the target leaves the published sets, or weightHold passed.
func TestWeightWriter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	state := func(key string, health string, samples int) scrape.TargetState {
		return scrape.TargetState{Key: key, Health: health, Samples: samples}
	}
	scraping := map[string]string{"k1": "id1", "k2": "id2", "k3": "id3"}
	classes := func(ws []targets.Weight) map[string]uint64 {
		out := map[string]uint64{}
		for _, w := range ws {
			for _, id := range []string{"id1", "id2", "id3"} {
				if targets.WeightKey(id) == w.Key {
					out[id] = w.Class
				}
			}
		}
		if len(out) != len(ws) {
			t.Fatalf("weights of unknown targets in %v", ws)
		}
		return out
	}
	check := func(what string, ws []targets.Weight, want map[string]uint64) {
		t.Helper()
		if got := classes(ws); !maps.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	var w weightWriter
	got := w.update([]scrape.TargetState{
		state("k1", scrape.HealthUp, 1000), state("k2", scrape.HealthUp, 50), state("k3", scrape.HealthUnknown, 0),
		state("local", scrape.HealthUp, 99999), // a placement local target: not published
	}, scraping, nil, nil, now)
	check("first scrapes", got, map[string]uint64{"id1": 1024, "id2": 48})

	got = w.update([]scrape.TargetState{
		state("k1", scrape.HealthUp, 1200), state("k2", scrape.HealthDown, 0), state("k3", scrape.HealthUp, 7),
	}, scraping, nil, nil, now)
	check("1200 holds 1024, a failed scrape keeps 48", got, map[string]uint64{"id1": 1024, "id2": 48, "id3": 7})
	got = w.update([]scrape.TargetState{state("k1", scrape.HealthUp, 1300)}, scraping, nil, nil, now)
	check("1300 reaches 1280", got, map[string]uint64{"id1": 1280, "id2": 48, "id3": 7})

	// id1 moves to b, id2 to c, id3 leaves the published sets.
	scraping = map[string]string{}
	owners := map[string]string{"id1": "b", "id2": "c"}
	got = w.update(nil, scraping, owners, nil, now)
	check("handed over, nobody else publishes", got, map[string]uint64{"id1": 1280, "id2": 48})
	ws := newWeightSet(7, map[string][]targets.Weight{"b": {{Key: targets.WeightKey("id1"), Class: 1024}}})
	got = w.update(nil, scraping, owners, ws, now.Add(time.Second))
	check("b publishes id1", got, map[string]uint64{"id2": 48})
	got = w.update(nil, scraping, owners, ws, now.Add(weightHold))
	check("weightHold passed", got, map[string]uint64{})
	if len(w.pub) != 0 {
		t.Fatalf("%d weights kept", len(w.pub))
	}
}

// TestOwnWeighed: members computing their targets from the same
// published weights agree (each target owned once), and 4 heavy targets
// out of 40 go to 4 different members of 4.
func TestOwnWeighed(t *testing.T) {
	jobs, pubs := ownFixture(40)
	var agents []targets.Member
	for i := range 4 {
		agents = append(agents, targets.Member{Name: fmt.Sprintf("a%d", i)})
	}
	heavy := map[string]bool{}
	lists := map[string][]targets.Weight{}
	for i, tg := range pubs["fleet"].targets {
		id := tg.ID("fleet")
		w := targets.Weight{Key: targets.WeightKey(id), Class: 40}
		if i%10 == 3 {
			heavy[tg.Address], w.Class = true, 4096
		}
		node := agents[i%4].Name
		lists[node] = append(lists[node], w)
	}
	for n, l := range lists {
		data, _ := targets.EncodeWeights(l)
		if lists[n], _ = targets.DecodeWeights(data); lists[n] == nil {
			t.Fatal("decode")
		}
	}
	ws := newWeightSet(9, lists)
	seen := map[string]string{}
	for _, a := range agents {
		var s scraping
		out := s.own(ownInput{node: a.Name, rev: 1, jobs: jobs, pubs: pubs, agents: agents, weights: ws, now: time.Unix(1_800_000_000, 0)})
		nHeavy := 0
		for _, tg := range out.targets {
			if o, ok := seen[tg.Address]; ok {
				t.Fatalf("%s owned by %s and %s", tg.Address, o, a.Name)
			}
			seen[tg.Address] = a.Name
			if heavy[tg.Address] {
				nHeavy++
			}
		}
		if nHeavy != 1 {
			t.Errorf("%s owns %d heavy targets, want 1", a.Name, nHeavy)
		}
	}
	if len(seen) != 40 {
		t.Fatalf("%d targets owned, want 40", len(seen))
	}
}

// weighedFixture is ownFixture(n) with a weight list per agent of 10,
// each holding the classes of a tenth of the targets.
func weighedFixture(n int) ([]targets.Member, map[string][]targets.Weight) {
	var agents []targets.Member
	for i := range 10 {
		agents = append(agents, targets.Member{Name: fmt.Sprintf("a%d", i)})
	}
	_, pubs := ownFixture(n)
	lists := map[string][]targets.Weight{}
	for i, tg := range pubs["fleet"].targets {
		node := agents[i%10].Name
		lists[node] = append(lists[node], targets.Weight{Key: targets.WeightKey(tg.ID("fleet")), Class: uint64(500 + i%1500)})
	}
	for node, l := range lists {
		data, _ := targets.EncodeWeights(l)
		lists[node], _ = targets.DecodeWeights(data)
	}
	return agents, lists
}

// BenchmarkOwnWeighed is BenchmarkOwn with a published weight for every
// target.
func BenchmarkOwnWeighed(b *testing.B) {
	jobs, pubs := ownFixture(100000)
	agents, lists := weighedFixture(100000)
	in := ownInput{node: "a0", rev: 1, jobs: jobs, pubs: pubs, agents: agents, weights: newWeightSet(1, lists), now: time.Unix(1_800_000_000, 0)}
	b.ReportAllocs()
	for b.Loop() {
		var s scraping
		if out := s.own(in); out.owned < 9000 {
			b.Fatalf("owned %d", out.owned)
		}
	}
}

// BenchmarkWeightSet measures what a member does on each change of a
// weight list: decode the list, merge every member's (100,000 targets
// over 10 members).
func BenchmarkWeightSet(b *testing.B) {
	_, lists := weighedFixture(100000)
	data, _ := targets.EncodeWeights(lists["a3"])
	b.ReportAllocs()
	for b.Loop() {
		ws, err := targets.DecodeWeights(data)
		if err != nil {
			b.Fatal(err)
		}
		lists["a3"] = ws
		if s := newWeightSet(1, lists); len(s.merged) != 100000 {
			b.Fatalf("%d weights", len(s.merged))
		}
	}
}
