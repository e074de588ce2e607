package targets

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// Errors of Assign, checked with errors.Is.
var (
	// ErrInvalidConfig reports a Config that Validate rejects.
	ErrInvalidConfig = errors.New("targets: invalid config")
	// ErrInvalidInput reports members or targets that Assign rejects: an
	// empty member name, an empty or repeated target ID, too many targets.
	ErrInvalidInput = errors.New("targets: invalid input")
	// ErrNoMembers reports that no member takes part: no target has an
	// owner.
	ErrNoMembers = errors.New("targets: no member to own the targets")
)

// DefaultLoad is Config.Load's default: see docs/design/scraping.md
// ("Ownership of scrape targets") for the figures that chose it.
const DefaultLoad = 1.05

// MaxTargets is the most targets Assign takes in one call; with weights
// capped at MaxWeightClass their sum stays below 2^60.
const MaxTargets = 1 << 20

// Config tunes Assign. Every member must use the same Config: another one
// places targets differently.
type Config struct {
	// Load bounds each member's share: no member is given more than
	// ceil(Load * total weight / members), unless a target does not fit
	// anywhere (then it goes to the least loaded member). With equal
	// weights it bounds the target count. Between 1.001 and 4, rounded to
	// thousandths. Default 1.05. Lower spreads more evenly and moves more
	// targets when members come and go.
	Load float64
}

// DefaultConfig returns the Config that members use.
func DefaultConfig() Config { return Config{Load: DefaultLoad} }

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if !(c.Load >= 1.001 && c.Load <= 4) {
		return fmt.Errorf("%w: load %v, want 1.001 to 4", ErrInvalidConfig, c.Load)
	}
	return nil
}

// permille returns Load in thousandths: integer arithmetic from here on,
// so that every platform computes the same bound.
func (c Config) permille() uint64 { return uint64(math.Round(c.Load * 1000)) }

// Ref is a target as Assign sees it.
type Ref struct {
	// ID identifies the target, the same on every member and stable
	// across discovery runs: Target.ID gives it for published targets.
	ID string
	// Samples is how many samples the target's last scrape returned; 0
	// means not known yet. Only WeightClass(Samples) matters. A target of
	// unknown weight weighs the median class of those known (1 when none
	// is). Every member must see the same value: take it from etcd, at
	// the same revision as the targets.
	Samples uint64
}

// Result is who owns what.
type Result struct {
	// Members are the members that took part, sorted, without duplicates.
	Members []string
	// Owners[i] is the owner of the i-th Ref given to Assign, one of
	// Members.
	Owners []string
	// Targets[j] is how many targets Members[j] owns.
	Targets []int
	// Weights[j] is the sum of the weights of the targets Members[j]
	// owns: their WeightClass, or the median class for those of unknown
	// weight.
	Weights []uint64
}

// Assign gives each target an owner among members, the node names of the
// members eligible for the job (see Select). It is a pure function, safe
// for concurrent use: every member that calls it with the same Config,
// members and refs, in any order, gets the same owner for each target ID.
//
// Each target ranks the members by a hash of the pair (rendezvous
// hashing). Targets are placed one by one, heaviest first, then in the
// order of their hashes; each goes to the member it ranks highest among
// those with room for it under ceil(Load * total weight / len(members)),
// or to the least loaded member when none has room. Heavy targets are
// thus spread first, and light ones fill around them. A member leaving
// moves its own targets and a few others (about 1% of all with 200
// targets per member, next to none with 1,000); a member joining takes
// about 1/len(members) of the targets, and moves as few between the
// others. It takes time in O(len(refs) * len(members)) plus a sort of
// refs: about 0.1 s for 100,000 targets and 100 members.
//
// It returns ErrInvalidConfig, ErrInvalidInput, or ErrNoMembers when
// members is empty, each with an empty Result.
func Assign(cfg Config, members []string, refs []Ref) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	names, err := checkMembers(members)
	if err != nil {
		return Result{}, err
	}
	ts, err := prepare(refs)
	if err != nil {
		return Result{}, err
	}
	if len(names) == 0 {
		return Result{}, fmt.Errorf("%w: %d targets", ErrNoMembers, len(refs))
	}
	mh := make([]uint64, len(names))
	for j, n := range names {
		mh[j] = sumIn(domainMember, n)
	}
	var total uint64
	for _, t := range ts {
		total += t.w
	}
	r := Result{
		Members: names,
		Owners:  make([]string, len(refs)),
		Targets: make([]int, len(names)),
		Weights: make([]uint64, len(names)),
	}
	bound := loadBound(total, cfg.permille(), len(names))
	for _, t := range ts {
		j := place(t, mh, r.Weights, bound)
		r.Owners[t.idx] = names[j]
		r.Targets[j]++
		r.Weights[j] += t.w
	}
	return r, nil
}

// place returns the member that gets t, given the members' loads: the
// highest scoring one with room for t under bound, else the least loaded
// one (the highest scoring among equals). Members of equal score
// (colliding hashes) are taken in name order.
func place(t target, mh, load []uint64, bound uint64) int {
	best, least := -1, 0
	var bestScore, leastScore uint64
	for j, m := range mh {
		s := score(t.h, m)
		if load[j] <= bound && t.w <= bound-load[j] && (best < 0 || s > bestScore) {
			best, bestScore = j, s
		}
		if j == 0 || load[j] < load[least] || load[j] == load[least] && s > leastScore {
			least, leastScore = j, s
		}
	}
	if best >= 0 {
		return best
	}
	return least
}

// loadBound returns ceil(total * permille / (1000 * members)). total is
// below 2^60 and permille at most 4000, so the quotient fits in 64 bits.
func loadBound(total, permille uint64, members int) uint64 {
	d := 1000 * uint64(members)
	hi, lo := bits.Mul64(total, permille)
	q, rem := bits.Div64(hi, lo, d)
	if rem != 0 {
		q++
	}
	return q
}

// target is a Ref prepared for placement.
type target struct {
	id  string
	h   uint64 // sumIn(domainTarget, id)
	w   uint64 // weight: the class, or the median class when unknown
	idx int    // index in the refs given to Assign
}

// prepare checks refs and returns them weighed, in placement order:
// heaviest first, then by hash, then by ID.
func prepare(refs []Ref) ([]target, error) {
	if len(refs) > MaxTargets {
		return nil, fmt.Errorf("%w: %d targets, at most %d", ErrInvalidInput, len(refs), MaxTargets)
	}
	ts := make([]target, len(refs))
	var known []uint64
	for i, r := range refs {
		if r.ID == "" {
			return nil, fmt.Errorf("%w: target %d has an empty ID", ErrInvalidInput, i)
		}
		w := WeightClass(r.Samples)
		if w > 0 {
			known = append(known, w)
		}
		ts[i] = target{id: r.ID, h: sumIn(domainTarget, r.ID), w: w, idx: i}
	}
	unknown := uint64(1)
	if len(known) > 0 {
		slices.Sort(known)
		unknown = known[(len(known)-1)/2] // the median, the lower of two
	}
	for i := range ts {
		if ts[i].w == 0 {
			ts[i].w = unknown
		}
	}
	slices.SortFunc(ts, func(a, b target) int {
		// Not cmp.Or, which would compare the IDs every time.
		if a.w != b.w {
			return cmp.Compare(b.w, a.w)
		}
		if a.h != b.h {
			return cmp.Compare(a.h, b.h)
		}
		return strings.Compare(a.id, b.id)
	})
	if err := checkUnique(ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// checkUnique reports a target ID that ts holds twice. Equal IDs have
// equal hashes, so only targets whose hashes collide are compared.
func checkUnique(ts []target) error {
	hs := make([]uint64, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	slices.Sort(hs)
	var dup map[uint64]bool
	for i := 1; i < len(hs); i++ {
		if hs[i] == hs[i-1] {
			if dup == nil {
				dup = map[uint64]bool{}
			}
			dup[hs[i]] = true
		}
	}
	if dup == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if !dup[t.h] {
			continue
		}
		if seen[t.id] {
			return fmt.Errorf("%w: target ID %q appears twice", ErrInvalidInput, t.id)
		}
		seen[t.id] = true
	}
	return nil
}

// checkMembers returns members sorted, without duplicates, in a new
// slice.
func checkMembers(members []string) ([]string, error) {
	if slices.Contains(members, "") {
		return nil, fmt.Errorf("%w: a member has an empty name", ErrInvalidInput)
	}
	names := slices.Clone(members)
	slices.Sort(names)
	return slices.Compact(names), nil
}
