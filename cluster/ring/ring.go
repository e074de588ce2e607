package ring

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/buraksezer/consistent"
)

// Ring places keys on members. Lookup and SetMembers are safe for
// concurrent use and never block for longer than a SetMembers in progress.
type Ring interface {
	// Lookup returns up to n member names for key, closest first: the
	// member that owns key, then the members that follow it on the ring.
	// It returns fewer than n names when the ring has fewer members, and
	// nil when n <= 0 or the ring is empty. The slice is the caller's.
	Lookup(key string, n int) []string
	// SetMembers replaces the ring's members with names (duplicates are
	// ignored, order does not matter). On error the ring keeps its
	// previous members. It does not retain names.
	SetMembers(names []string) error
}

// Errors of this package, checked with errors.Is.
var (
	// ErrInvalidConfig reports a Config that Validate rejects.
	ErrInvalidConfig = errors.New("ring: invalid config")
	// ErrTooManyMembers reports more members than Config.PartitionCount:
	// the library would leave some with no partition and panic while
	// bounding the others' loads.
	ErrTooManyMembers = errors.New("ring: too many members")
	// ErrPlacement reports that the library panicked or returned an
	// inconsistent placement. With a valid Config and no more members than
	// partitions it cannot happen; it is the last line of defence.
	ErrPlacement = errors.New("ring: cannot place partitions")
)

// Defaults of Config.
const (
	// DefaultPartitionCount is prime (the library spreads keys by
	// hash % PartitionCount) and above the 1000 upstreams a cluster is
	// expected to have at most, since a ring takes at most PartitionCount
	// members.
	DefaultPartitionCount = 1021
	// DefaultReplicationFactor is the library's default.
	DefaultReplicationFactor = 20
	// DefaultLoad is the library's default bound: no member owns more
	// than 1.2 times the average number of partitions.
	DefaultLoad = 1.2
)

// Limits of Config, checked by Validate.
const (
	maxPartitionCount    = 1 << 20
	maxReplicationFactor = 1000
)

// Config configures a HashRing. Every agent must use the same Config:
// a different one places keys differently.
type Config struct {
	// PartitionCount is how many partitions keys are hashed into; members
	// own partitions, and a ring takes at most PartitionCount members.
	// Between 1 and 1<<20. Default 1021.
	PartitionCount int
	// ReplicationFactor is how many points each member has on the hash
	// circle; more points spread partitions more evenly and cost more
	// time per SetMembers. Between 2 and 1000: with one point a ring of
	// one member makes the library panic. Default 20.
	ReplicationFactor int
	// Load bounds each member's share: no member owns more than
	// ceil(Load * average) partitions, and Compute gives no upstream more
	// than ceil(Load * average) agents as their primary (nor, counted
	// apart, relays). Greater than 1:
	// at exactly 1 the partitions may not fit and the library panics.
	// Default 1.2: taking an upstream down moves at most 1.2 times the ideal share of agents.
	Load float64
}

// DefaultConfig returns the Config that Compute uses.
func DefaultConfig() Config {
	return Config{
		PartitionCount:    DefaultPartitionCount,
		ReplicationFactor: DefaultReplicationFactor,
		Load:              DefaultLoad,
	}
}

// Validate reports whether c is usable: with a valid c the library cannot
// panic for any member count from 1 to PartitionCount. Each member may own
// ceil(floor(P/M) * Load) partitions; with Load > 1 and M <= P that is at
// least floor(P/M) + 1, and M * (floor(P/M) + 1) > P, so every partition
// fits; with two or more points per member the library's search, which
// visits all points but one, meets every member.
func (c Config) Validate() error {
	if c.PartitionCount < 1 || c.PartitionCount > maxPartitionCount {
		return fmt.Errorf("%w: partition count %d, want 1 to %d", ErrInvalidConfig, c.PartitionCount, maxPartitionCount)
	}
	if c.ReplicationFactor < 2 || c.ReplicationFactor > maxReplicationFactor {
		return fmt.Errorf("%w: replication factor %d, want 2 to %d", ErrInvalidConfig, c.ReplicationFactor, maxReplicationFactor)
	}
	if !(c.Load > 1) || math.IsInf(c.Load, 0) {
		return fmt.Errorf("%w: load %v, want a finite number greater than 1", ErrInvalidConfig, c.Load)
	}
	return nil
}

// HashRing is the Ring of github.com/buraksezer/consistent. Its methods are
// safe for concurrent use; lookups read an immutable table that
// SetMembers swaps.
type HashRing struct {
	cfg Config

	mu sync.RWMutex
	t  *table
}

var _ Ring = (*HashRing)(nil)

// New returns an empty HashRing, or ErrInvalidConfig. It starts nothing.
func New(cfg Config) (*HashRing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &HashRing{cfg: cfg, t: &table{}}, nil
}

// SetMembers implements Ring. It returns ErrTooManyMembers for more names
// than Config.PartitionCount and ErrPlacement if the library fails. It
// takes time linear in PartitionCount plus, within the library,
// quadratic in the number of names (the library sorts its points after
// each member it adds).
func (r *HashRing) SetMembers(names []string) error {
	t, err := buildTable(r.cfg, names)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.t = t
	r.mu.Unlock()
	return nil
}

// Lookup implements Ring.
func (r *HashRing) Lookup(key string, n int) []string {
	r.mu.RLock()
	t := r.t
	r.mu.RUnlock()
	n = min(n, len(t.names))
	if n <= 0 {
		return nil
	}
	out := make([]string, n)
	start := t.start(key)
	for i := range out {
		out[i] = t.names[t.order[(start+i)%len(t.order)]]
	}
	return out
}

// Members returns the ring's member names, sorted. The slice is the
// caller's. It is safe for concurrent use.
func (r *HashRing) Members() []string {
	r.mu.RLock()
	t := r.t
	r.mu.RUnlock()
	return slices.Clone(t.names)
}

// table is an immutable snapshot of a ring: who owns each partition, as
// the library placed them, and the library's successor order.
type table struct {
	names []string // members, sorted
	// owner maps a partition to its owner, an index into names.
	owner []int32
	// order lists the member indices in the order in which
	// consistent.GetClosestN walks them: by the hash of the member's
	// name. The library re-hashes and sorts all members on every call;
	// this table does it once.
	order []int32
	// pos is the position of each member in order.
	pos []int32
}

// start returns the position in t.order of key's owner. t must have
// members.
func (t *table) start(key string) int {
	return t.startAt(partition(key, len(t.owner)))
}

// startAt is start for a key in partition part.
func (t *table) startAt(part int) int { return int(t.pos[t.owner[part]]) }

// partition returns key's partition among n, as consistent.FindPartitionID
// computes it.
func partition(key string, n int) int { return int(sumString(key) % uint64(n)) }

// member is a consistent.Member. Its ring name ends in a NUL so that the
// library's point keys, ring name followed by a decimal point number, are
// distinct for distinct names: without it, member "a" point 15 and member
// "a1" point 5 would both be "a15" and one would lose its point.
type member struct {
	ringName string
	idx      int32
}

// String implements consistent.Member.
func (m member) String() string { return m.ringName }

// ringName returns the name under which the library knows member name.
func ringName(name string) string { return name + "\x00" }

// buildTable places cfg.PartitionCount partitions on names with the
// library. cfg must be valid.
func buildTable(cfg Config, names []string) (*table, error) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > cfg.PartitionCount {
		return nil, fmt.Errorf("%w: %d members, at most %d (the partition count)", ErrTooManyMembers, len(names), cfg.PartitionCount)
	}
	t := &table{names: names}
	if len(names) == 0 {
		// The library panics distributing partitions over no members.
		return t, nil
	}
	owner, err := placePartitions(cfg, names)
	if err != nil {
		return nil, err
	}
	t.owner = owner
	type ranked struct {
		hash uint64
		idx  int32
	}
	rs := make([]ranked, len(names))
	for i, n := range names {
		rs[i] = ranked{sumString(ringName(n)), int32(i)}
	}
	// Ties (a hash collision) are broken by name so that the order stays
	// total; the library would drop one of the colliding members.
	slices.SortFunc(rs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.idx, b.idx))
	})
	t.order = make([]int32, len(names))
	t.pos = make([]int32, len(names))
	for p, r := range rs {
		t.order[p] = r.idx
		t.pos[r.idx] = int32(p)
	}
	return t, nil
}

// placePartitions returns the owner of each partition, an index into
// names, as consistent places them with bounded loads. It turns a panic
// of the library into ErrPlacement.
func placePartitions(cfg Config, names []string) (owner []int32, err error) {
	defer func() {
		if p := recover(); p != nil {
			owner, err = nil, fmt.Errorf("%w: %d members, %d partitions: %v", ErrPlacement, len(names), cfg.PartitionCount, p)
		}
	}()
	ms := make([]consistent.Member, len(names))
	for i, n := range names {
		ms[i] = member{ringName: ringName(n), idx: int32(i)}
	}
	c := consistent.New(ms, consistent.Config{
		Hasher:            fnvHasher{},
		PartitionCount:    cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
	owner = make([]int32, cfg.PartitionCount)
	for p := range owner {
		m, ok := c.GetPartitionOwner(p).(member)
		if !ok {
			return nil, fmt.Errorf("%w: partition %d has no owner", ErrPlacement, p)
		}
		owner[p] = m.idx
	}
	return owner, nil
}
