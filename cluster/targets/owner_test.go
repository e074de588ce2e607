package targets

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestOwnershipShuffled: every member gets the same owner for each target
// whatever the order of members and targets, and duplicate members.
func TestOwnershipShuffled(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, refs := range [][]Ref{uniformRefs(3000), heavyRefs(3000, false, 3)} {
		ms := memberNames(13)
		want := ownerByID(t, ms, refs)
		for range 5 {
			ms2 := append(slices.Clone(ms), ms[rng.IntN(len(ms))])
			refs2 := slices.Clone(refs)
			rng.Shuffle(len(ms2), func(i, j int) { ms2[i], ms2[j] = ms2[j], ms2[i] })
			rng.Shuffle(len(refs2), func(i, j int) { refs2[i], refs2[j] = refs2[j], refs2[i] })
			got := ownerByID(t, ms2, refs2)
			for id, o := range want {
				if got[id] != o {
					t.Fatalf("target %q: owner %q after shuffling, %q before", id, got[id], o)
				}
			}
		}
	}
}

func ownerByID(t *testing.T, ms []string, refs []Ref) map[string]string {
	t.Helper()
	r, err := Assign(DefaultConfig(), ms, refs)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(refs))
	for i, ref := range refs {
		out[ref.ID] = r.Owners[i]
	}
	return out
}

// TestOwnershipPinned pins owners for a fixed input: every procfleet
// version must give the same, or members of a cluster being upgraded
// disagree about who scrapes what. Change the hashes or the placement
// only with a plan for mixed versions.
func TestOwnershipPinned(t *testing.T) {
	t.Parallel()
	refs := []Ref{
		{ID: Target{Address: "10.0.0.1:9100"}.ID("node")},
		{ID: Target{Address: "10.0.0.2:9100"}.ID("node"), Samples: 1200},
		{ID: Target{Address: "10.0.0.3:9100", Labels: []Label{{"env", "prod"}}}.ID("node")},
		{ID: Target{Address: "db-1:9187"}.ID("postgres"), Samples: 90000},
		{ID: Target{Address: "db-2:9187"}.ID("postgres"), Samples: 700},
		{ID: Target{Address: "switch-1"}.ID("snmp"), Samples: 300},
	}
	r, err := Assign(DefaultConfig(), []string{"a", "b", "c"}, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"c", "a", "a", "b", "c", "c"}
	if !slices.Equal(r.Owners, want) {
		t.Errorf("owners %q, want %q", r.Owners, want)
	}
}

// TestAssignResult checks the Result's bookkeeping and the bound.
func TestAssignResult(t *testing.T) {
	t.Parallel()
	refs := heavyRefs(5000, false, 9)
	r, err := Assign(DefaultConfig(), []string{"c", "a", "b", "a"}, refs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Members, []string{"a", "b", "c"}) {
		t.Fatalf("members %q", r.Members)
	}
	n := map[string]int{}
	w := map[string]uint64{}
	var total uint64
	for i, o := range r.Owners {
		n[o]++
		w[o] += WeightClass(refs[i].Samples)
		total += WeightClass(refs[i].Samples)
	}
	for j, m := range r.Members {
		if r.Targets[j] != n[m] || r.Weights[j] != w[m] {
			t.Errorf("%s: Targets %d Weights %d, counted %d and %d", m, r.Targets[j], r.Weights[j], n[m], w[m])
		}
		if bound := loadBound(total, 1050, 3); r.Weights[j] > bound {
			t.Errorf("%s: weight %d over the bound %d", m, r.Weights[j], bound)
		}
	}
}

// TestAssignEdges: targets heavier than a member's share, fewer targets
// than members, unknown weights.
func TestAssignEdges(t *testing.T) {
	t.Parallel()
	ms := memberNames(4)
	t.Run("heavier than the bound", func(t *testing.T) {
		refs := uniformRefs(40)
		for i := range refs {
			refs[i].Samples = 100
		}
		refs[3].Samples, refs[7].Samples = 1e9, 1e9
		r, err := Assign(DefaultConfig(), ms, refs)
		if err != nil {
			t.Fatal(err)
		}
		if r.Owners[3] == r.Owners[7] {
			t.Errorf("the two giants share %s", r.Owners[3])
		}
		for j, m := range r.Members {
			if (m == r.Owners[3] || m == r.Owners[7]) && r.Targets[j] != 1 {
				t.Errorf("%s holds a giant and %d targets", m, r.Targets[j])
			}
		}
	})
	t.Run("fewer targets than members", func(t *testing.T) {
		r, err := Assign(DefaultConfig(), memberNames(10), uniformRefs(7))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(slices.Compact(slices.Sorted(slices.Values(r.Owners)))); got != 7 {
			t.Errorf("7 targets on %d members, want 7", got)
		}
	})
	t.Run("unknown weighs the median", func(t *testing.T) {
		refs := uniformRefs(6)
		refs[0].Samples, refs[1].Samples, refs[2].Samples, refs[3].Samples = 1024, 3072, 1e6, 512
		r, err := Assign(DefaultConfig(), ms, refs)
		if err != nil {
			t.Fatal(err)
		}
		var total uint64
		for _, w := range r.Weights {
			total += w
		}
		// The median of 512, 1024, 3072 and 1e6's class, the lower of two.
		if want := uint64(512 + 1024 + 3072 + WeightClass(1e6) + 2*1024); total != want {
			t.Errorf("total weight %d, want %d", total, want)
		}
	})
}

func TestAssignErrors(t *testing.T) {
	t.Parallel()
	ok := uniformRefs(3)
	for _, c := range []struct {
		name    string
		cfg     Config
		members []string
		refs    []Ref
		want    error
	}{
		{"zero config", Config{}, []string{"a"}, ok, ErrInvalidConfig},
		{"load 1", Config{Load: 1}, []string{"a"}, ok, ErrInvalidConfig},
		{"load NaN", Config{Load: nanLoad()}, []string{"a"}, ok, ErrInvalidConfig},
		{"empty member", DefaultConfig(), []string{"a", ""}, ok, ErrInvalidInput},
		{"empty ID", DefaultConfig(), []string{"a"}, []Ref{{ID: "x"}, {}}, ErrInvalidInput},
		{"duplicate ID", DefaultConfig(), []string{"a"}, []Ref{{ID: "x"}, {ID: "y"}, {ID: "x", Samples: 5}}, ErrInvalidInput},
		{"no members", DefaultConfig(), nil, ok, ErrNoMembers},
	} {
		r, err := Assign(c.cfg, c.members, c.refs)
		if !errors.Is(err, c.want) || r.Owners != nil {
			t.Errorf("%s: %v, %d owners; want %v", c.name, err, len(r.Owners), c.want)
		}
	}
	if r, err := Assign(DefaultConfig(), nil, nil); !errors.Is(err, ErrNoMembers) || len(r.Owners) != 0 {
		t.Errorf("nothing: %v", err)
	}
	if r, err := Assign(DefaultConfig(), []string{"a"}, nil); err != nil || len(r.Owners) != 0 {
		t.Errorf("no targets: %v %v", r, err)
	}
}

func nanLoad() float64 {
	var zero float64
	return zero / zero
}

func TestWeightClass(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want uint64 }{
		{0, 0}, {1, 1}, {5, 5}, {7, 7}, {8, 8}, {9, 10}, {10, 10}, {11, 12}, {15, 16},
		{1000, 1024}, {1100, 1024}, {1151, 1024}, {1152, 1280}, {1200, 1280}, {1900, 1792}, {1920, 2048},
		{100000, 98304}, {1<<40 - 1, 1 << 40}, {1 << 40, MaxWeightClass}, {1<<64 - 1, MaxWeightClass},
	} {
		if got := WeightClass(c.in); got != c.want {
			t.Errorf("WeightClass(%d) = %d, want %d", c.in, got, c.want)
		}
	}
	// Within 12.5% of the count.
	for s := uint64(1); s < 1<<20; s = s*17/16 + 1 {
		w := WeightClass(s)
		if d := float64(w)/float64(s) - 1; d > 0.125 || d < -0.125 {
			t.Errorf("WeightClass(%d) = %d, %.1f%% off", s, w, 100*d)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	ms := []Member{
		{Name: "c", Labels: map[string]string{"zone": "eu-1", "role": "db"}},
		{Name: "a", Labels: map[string]string{"zone": "eu-1"}},
		{Name: "b", Labels: map[string]string{"zone": "eu-2"}},
		{Name: "a", Labels: map[string]string{"zone": "eu-1"}},
		{Name: "d"},
	}
	for _, c := range []struct {
		sel  map[string]string
		want []string
	}{
		{nil, []string{"a", "b", "c", "d"}},
		{map[string]string{"zone": "eu-1"}, []string{"a", "c"}},
		{map[string]string{"zone": "eu-1", "role": "db"}, []string{"c"}},
		{map[string]string{"zone": ""}, nil},
		{map[string]string{"zone": "us-1"}, nil},
	} {
		if got := Select(ms, c.sel); !slices.Equal(got, c.want) {
			t.Errorf("Select(%v) = %q, want %q", c.sel, got, c.want)
		}
	}
}
