package ring

// FNV-1a 64-bit parameters, as in hash/fnv. The loop is written out here
// because hash/fnv's Hash64 is reached through an interface and a []byte,
// which costs an allocation per agent name on the hot path; TestHashMatchesFNV
// keeps the two in step.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fnvHasher is the consistent.Hasher of every ring: FNV-1a 64 followed by
// a 64-bit finalizer (MurmurHash3's fmix64). FNV-1a alone mixes short,
// similar inputs (the library hashes 8-byte little-endian partition numbers
// and "name0".."name19") poorly in its high bits, which decide a position
// on the ring; the finalizer spreads every input bit over the whole word.
type fnvHasher struct{}

// Sum64 implements consistent.Hasher. It is safe for concurrent use.
func (fnvHasher) Sum64(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return fmix64(h)
}

// sumString is Sum64 of a string, without converting it to []byte.
func sumString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return fmix64(h)
}

// fmix64 is MurmurHash3's 64-bit finalizer.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
