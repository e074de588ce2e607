package targets

// The hashes of this package decide owners and phases, which every member
// must compute alike, also across procfleet versions during a rolling
// upgrade: TestOwnershipPinned and TestPhasePinned fail when they change.
//
// FNV-1a 64, written out so that hashing a string allocates nothing,
// followed by MurmurHash3's 64-bit finalizer, which spreads every input
// bit over the whole word (FNV-1a alone mixes short, similar inputs
// poorly in its high bits).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fnvString folds s into FNV-1a state h.
func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// sum64 is the 64-bit hash of s.
func sum64(s string) uint64 { return fmix64(fnvString(fnvOffset64, s)) }

// Domain prefixes, so that a target's phase says nothing about its owner
// and a member's hash is unrelated to any target's.
const (
	domainTarget = "procfleet/target\x00"
	domainMember = "procfleet/member\x00"
	domainPhase  = "procfleet/phase\x00"
	domainWeight = "procfleet/weight\x00"
)

// sumIn is the 64-bit hash of s in a domain.
func sumIn(domain, s string) uint64 {
	return fmix64(fnvString(fnvString(fnvOffset64, domain), s))
}

// score is the rendezvous score of a target (hash t) on a member (hash
// m): the member with the highest score owns the target when it has room.
// fmix64 is a bijection, so distinct members never tie on one target
// unless their hashes collide (then the member's name decides).
func score(t, m uint64) uint64 { return fmix64(t ^ m) }

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
