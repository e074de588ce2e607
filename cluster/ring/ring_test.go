package ring

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"testing"

	"github.com/buraksezer/consistent"
)

func TestHashMatchesFNV(t *testing.T) {
	for _, s := range []string{"", "a", "vm-a\x00", "host-00001.example.com", "\xff\x00\x01"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		want := fmix64(h.Sum64())
		if got := (fnvHasher{}).Sum64([]byte(s)); got != want {
			t.Errorf("Sum64(%q) = %x, want %x", s, got, want)
		}
		if got := sumString(s); got != want {
			t.Errorf("sumString(%q) = %x, want %x", s, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(name string, mod func(*Config), ok bool) {
		t.Helper()
		cfg := DefaultConfig()
		mod(&cfg)
		err := cfg.Validate()
		if ok && err != nil {
			t.Errorf("%s: Validate() = %v, want nil", name, err)
		}
		if !ok && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", name, err)
		}
		if _, nerr := New(cfg); (nerr == nil) != ok {
			t.Errorf("%s: New() error = %v, want ok=%v", name, nerr, ok)
		}
	}
	f("default", func(*Config) {}, true)
	f("one partition", func(c *Config) { c.PartitionCount = 1 }, true)
	f("zero partitions", func(c *Config) { c.PartitionCount = 0 }, false)
	f("too many partitions", func(c *Config) { c.PartitionCount = maxPartitionCount + 1 }, false)
	f("replication 2", func(c *Config) { c.ReplicationFactor = 2 }, true)
	f("replication 1", func(c *Config) { c.ReplicationFactor = 1 }, false)
	f("replication too high", func(c *Config) { c.ReplicationFactor = maxReplicationFactor + 1 }, false)
	f("load just above 1", func(c *Config) { c.Load = math.Nextafter(1, 2) }, true)
	f("load 1", func(c *Config) { c.Load = 1 }, false)
	f("load 0", func(c *Config) { c.Load = 0 }, false)
	f("load NaN", func(c *Config) { c.Load = math.NaN() }, false)
	f("load Inf", func(c *Config) { c.Load = math.Inf(1) }, false)
}

// TestBoundArithmetic checks, with the library's own formula, that the
// default config leaves room for every partition at every member count
// it accepts.
func TestBoundArithmetic(t *testing.T) {
	cfg := DefaultConfig()
	p := cfg.PartitionCount
	for m := 1; m <= p; m++ {
		perMember := math.Ceil(float64(p/m) * cfg.Load) // consistent.averageLoad
		if int(perMember)*m < p {
			t.Fatalf("%d members: room for %v partitions each, %d in all, want >= %d", m, perMember, int(perMember)*m, p)
		}
	}
}

func memberNames(prefix string, n int) []string {
	ns := make([]string, n)
	for i := range ns {
		ns[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ns
}

// TestNoPanicAtAnyMemberCount builds rings of every member count up to
// the partition count, for small partition counts, replication 2 (the
// least Validate accepts) and loads down to the closest to 1, names that
// are prefixes of one another included.
func TestNoPanicAtAnyMemberCount(t *testing.T) {
	t.Parallel()
	for _, p := range []int{1, 2, 3, 7, 31, 61} {
		for _, rf := range []int{2, 3, 20} {
			for _, load := range []float64{math.Nextafter(1, 2), 1.01, DefaultLoad, 3} {
				cfg := Config{PartitionCount: p, ReplicationFactor: rf, Load: load}
				r, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				for m := 1; m <= p; m++ {
					names := memberNames("a", m) // a0..a9, a10.. share prefixes
					if err := r.SetMembers(names); err != nil {
						t.Fatalf("%+v, %d members: %v", cfg, m, err)
					}
					checkOwners(t, cfg, r, m)
				}
			}
		}
	}
}

// checkOwners fails unless every partition has an owner and no member
// owns more than the library's bound.
func checkOwners(t *testing.T, cfg Config, r *HashRing, m int) {
	t.Helper()
	tb := r.t
	owned := make([]int, m)
	for _, o := range tb.owner {
		owned[o]++
	}
	limit := int(math.Ceil(float64(cfg.PartitionCount/m) * cfg.Load))
	for i, n := range owned {
		if n > limit {
			t.Fatalf("%+v, %d members: %s owns %d partitions, bound %d", cfg, m, tb.names[i], n, limit)
		}
	}
}

func TestDefaultConfigMemberCounts(t *testing.T) {
	t.Parallel()
	counts := []int{1, 2, 3, 4, 5, 10, 50, 100, 250}
	if !testing.Short() && !raceEnabled {
		// The library sorts its points after each member it adds: 1000
		// members take about a second.
		// TestNoPanicAtAnyMemberCount covers as many members as
		// partitions, at smaller partition counts.
		counts = append(counts, 1000)
	}
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range counts {
		if err := r.SetMembers(memberNames("vm-", m)); err != nil {
			t.Fatalf("%d members: %v", m, err)
		}
		checkOwners(t, DefaultConfig(), r, m)
		if got := r.Lookup("host-1", m+5); len(got) != m {
			t.Fatalf("%d members: Lookup(n=%d) returned %d names", m, m+5, len(got))
		}
	}
}

func TestHashRingLimits(t *testing.T) {
	r, err := New(Config{PartitionCount: 7, ReplicationFactor: 2, Load: 1.25})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Lookup("k", 3); got != nil {
		t.Errorf("empty ring: Lookup = %q, want nil", got)
	}
	if err := r.SetMembers(nil); err != nil {
		t.Errorf("SetMembers(nil) = %v", err)
	}
	if err := r.SetMembers([]string{"b", "a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if got := r.Members(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Members = %q, want duplicates dropped and sorted", got)
	}
	for _, n := range []int{-1, 0} {
		if got := r.Lookup("k", n); got != nil {
			t.Errorf("Lookup(n=%d) = %q, want nil", n, got)
		}
	}
	all := r.Lookup("k", 10)
	if len(all) != 3 {
		t.Fatalf("Lookup(n > members) = %q, want all 3", all)
	}
	s := slices.Clone(all)
	slices.Sort(s)
	if !slices.Equal(s, []string{"a", "b", "c"}) {
		t.Errorf("Lookup = %q, want each member once", all)
	}
	if got := r.Lookup("k", 1); got[0] != all[0] {
		t.Errorf("Lookup(n=1) = %q, want the first of %q", got, all)
	}
	err = r.SetMembers(memberNames("m", 8))
	if !errors.Is(err, ErrTooManyMembers) {
		t.Errorf("8 members, 7 partitions: SetMembers = %v, want ErrTooManyMembers", err)
	}
	if got := r.Members(); len(got) != 3 {
		t.Errorf("after a failed SetMembers, members = %q, want the previous 3", got)
	}
	if err := r.SetMembers([]string{"only"}); err != nil {
		t.Fatal(err)
	}
	if got := r.Lookup("k", 2); !slices.Equal(got, []string{"only"}) {
		t.Errorf("one member: Lookup = %q", got)
	}
}

// TestPlacementRecovers drives the library into the panics Validate
// guards against and checks that they come back as ErrPlacement.
func TestPlacementRecovers(t *testing.T) {
	f := func(cfg Config, members int) {
		t.Helper()
		_, err := placePartitions(cfg, memberNames("m", members))
		if !errors.Is(err, ErrPlacement) {
			t.Errorf("%+v, %d members: %v, want ErrPlacement", cfg, members, err)
		}
	}
	f(Config{PartitionCount: 7, ReplicationFactor: 1, Load: 1.25}, 1)  // one point: the search never looks
	f(Config{PartitionCount: 3, ReplicationFactor: 20, Load: 1.25}, 4) // more members than partitions
}

// TestLookupMatchesLibrary checks that the table gives what the library's
// LocateKey and GetClosestN give.
func TestLookupMatchesLibrary(t *testing.T) {
	cfg := DefaultConfig()
	names := []string{"vm-a", "vm-b", "vm-c", "vm-d", "relay-1", "relay-10"}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetMembers(names); err != nil {
		t.Fatal(err)
	}
	ms := make([]consistent.Member, 0, len(names))
	for i, n := range r.Members() {
		ms = append(ms, member{ringName: ringName(n), idx: int32(i)})
	}
	c := consistent.New(ms, consistent.Config{Hasher: fnvHasher{}, PartitionCount: cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor, Load: cfg.Load})
	for i := range 2000 {
		key := fmt.Sprintf("host-%d", i)
		closest, err := c.GetClosestN([]byte(key), len(names))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, len(closest))
		for j, m := range closest {
			want[j] = r.Members()[m.(member).idx]
		}
		if got := r.Lookup(key, len(names)); !slices.Equal(got, want) {
			t.Fatalf("Lookup(%q) = %q, library %q", key, got, want)
		}
		if owner := c.LocateKey([]byte(key)).(member); want[0] != r.Members()[owner.idx] {
			t.Fatalf("LocateKey(%q) = %q, GetClosestN starts at %q", key, owner.ringName, want[0])
		}
	}
}
