package targets_test

import (
	"fmt"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/targets"
)

// Every member computes the same owners from the same published targets
// and members. Here a job selects the members of zone eu-1; a target's
// weight is the samples its last scrape returned (0: not scraped yet,
// counted as the median). db-3 returns more than the other five together
// and so has a member to itself.
func ExampleAssign() {
	members := []targets.Member{
		{Name: "scraper-a", Labels: map[string]string{"zone": "eu-1"}},
		{Name: "scraper-b", Labels: map[string]string{"zone": "eu-1"}},
		{Name: "scraper-c", Labels: map[string]string{"zone": "eu-2"}},
	}
	eligible := targets.Select(members, map[string]string{"zone": "eu-1"})
	var refs []targets.Ref
	for i, samples := range []uint64{1200, 900, 0, 150000, 1100, 0} {
		t := targets.Target{Address: fmt.Sprintf("db-%d:9187", i)}
		refs = append(refs, targets.Ref{ID: t.ID("postgres"), Samples: samples})
	}
	r, err := targets.Assign(targets.DefaultConfig(), eligible, refs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(eligible)
	fmt.Println(r.Owners)
	fmt.Println(r.Targets, r.Weights)
	// Output:
	// [scraper-a scraper-b]
	// [scraper-b scraper-b scraper-b scraper-a scraper-b scraper-b]
	// [1 5] [163840 5248]
}

// The elected member encodes a job's resolved targets; every member
// decodes them from the keys it reads at the manifest's revision.
func ExampleEncode() {
	space, err := keys.New("prod")
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := []targets.Target{
		{Address: "db-2:9187", Labels: []targets.Label{{Name: "env", Value: "prod"}}},
		{Address: "db-1:9187", Labels: []targets.Label{{Name: "env", Value: "prod"}}},
	}
	p, err := targets.Encode(space, "postgres", ts, targets.DefaultCodecConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.ManifestKey)
	for _, c := range p.Chunks {
		fmt.Println(c.Key)
	}
	// A reader, given the manifest value and the chunks at its revision:
	m, err := targets.ParseManifest(p.ManifestValue)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := targets.Decode(space, m, p.Chunks)
	fmt.Println(got, err)
	// Output:
	// /procfleet/prod/targets/postgres
	// /procfleet/prod/target-chunks/postgres/2ed6a1fcf7c3e2b0585b8522b68dcf3e/000000
	// [{db-1:9187 [{env prod}]} {db-2:9187 [{env prod}]}] <nil>
}
