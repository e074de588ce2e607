package targets

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// ErrCorruptWeights reports a weight list that DecodeWeights cannot
// accept.
var ErrCorruptWeights = errors.New("targets: corrupt weight list")

// Weight is a target's published weight: the WeightClass of the samples
// its last scrape returned, under the target's WeightKey.
type Weight struct {
	Key   uint64 // WeightKey of the target's ID
	Class uint64 // a WeightClass, not 0
}

// WeightKey returns the key of a target ID (Target.ID) in a weight list:
// a 64-bit hash in a domain of its own. Two targets of one cluster share a
// key with a chance of about n²/2⁶⁵ (1 in 3 billion for 100,000 targets);
// they would then share a weight, the same on every member. It is a pure
// function.
func WeightKey(id string) uint64 { return sumIn(domainWeight, id) }

// The encoding of a weight list, what a member publishes under
// keys.Space.TargetWeight(node): weightMagic, then one entry per target
// in increasing key order, each its key in 8 bytes (big endian) and its
// class in one byte (classCode). 9 bytes a target: MaxWeightBytes holds
// 116,508 of them.
const (
	weightMagic = "pfw1"
	weightEntry = 9
	// MaxWeightBytes bounds an encoded weight list, as the target reports
	// are bounded: one etcd value well within its request limit.
	MaxWeightBytes = 1 << 20
	// MaxWeights is the most weights one encoded list holds.
	MaxWeights = (MaxWeightBytes - len(weightMagic)) / weightEntry
)

// classCode returns the one-byte code of a class c (1 to
// MaxWeightClass): c itself below 8, else 8 + 4*(s-1) + (m-4) for
// c = m << s with m in 4..7 and s >= 1; at most 156.
func classCode(c uint64) byte {
	if c < 8 {
		return byte(c)
	}
	s := bits.Len64(c) - 3
	return byte(8 + 4*(s-1) + int(c>>s) - 4)
}

// maxClassCode is classCode(MaxWeightClass).
var maxClassCode = classCode(MaxWeightClass)

// codeClass returns the class of a code, 0 for none.
func codeClass(b byte) uint64 {
	switch {
	case b == 0 || b > maxClassCode:
		return 0
	case b < 8:
		return uint64(b)
	}
	k := int(b) - 8
	return uint64(4+k%4) << (k/4 + 1)
}

// EncodeWeights returns the encoding of ws, in a new slice: sorted by
// key, one entry per key (the largest class of a key given twice),
// entries of class 0 left out, classes not on WeightClass's grid rounded
// onto it. When more than MaxWeights remain, the heaviest are kept (the
// lower keys among equals): the others weigh the median, as unknown ones.
// It returns the encoding and how many weights were left out for room.
// It does not modify ws. It is a pure function.
func EncodeWeights(ws []Weight) ([]byte, int) {
	list := make([]Weight, 0, len(ws))
	for _, w := range ws {
		if c := WeightClass(w.Class); c > 0 {
			list = append(list, Weight{Key: w.Key, Class: c})
		}
	}
	slices.SortFunc(list, func(a, b Weight) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(b.Class, a.Class))
	})
	list = slices.CompactFunc(list, func(a, b Weight) bool { return a.Key == b.Key })
	dropped := 0
	if len(list) > MaxWeights {
		slices.SortFunc(list, func(a, b Weight) int {
			return cmp.Or(cmp.Compare(b.Class, a.Class), cmp.Compare(a.Key, b.Key))
		})
		dropped = len(list) - MaxWeights
		list = list[:MaxWeights]
		slices.SortFunc(list, func(a, b Weight) int { return cmp.Compare(a.Key, b.Key) })
	}
	out := make([]byte, 0, len(weightMagic)+weightEntry*len(list))
	out = append(out, weightMagic...)
	for _, w := range list {
		out = binary.BigEndian.AppendUint64(out, w.Key)
		out = append(out, classCode(w.Class))
	}
	return out, dropped
}

// DecodeWeights returns the weights data encodes, sorted by key. It
// refuses (ErrCorruptWeights) anything EncodeWeights does not write: a
// wrong magic or length, keys out of order or repeated, a class code
// beyond MaxWeightClass's or 0. It is a pure function.
func DecodeWeights(data []byte) ([]Weight, error) {
	if len(data) > MaxWeightBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrCorruptWeights, len(data), MaxWeightBytes)
	}
	body, ok := cutMagic(data)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrCorruptWeights, weightMagic)
	}
	if len(body)%weightEntry != 0 {
		return nil, fmt.Errorf("%w: %d bytes of entries, not a multiple of %d", ErrCorruptWeights, len(body), weightEntry)
	}
	out := make([]Weight, len(body)/weightEntry)
	for i := range out {
		e := body[i*weightEntry:]
		w := Weight{Key: binary.BigEndian.Uint64(e), Class: codeClass(e[8])}
		if w.Class == 0 {
			return nil, fmt.Errorf("%w: entry %d has class code %d", ErrCorruptWeights, i, e[8])
		}
		if i > 0 && w.Key <= out[i-1].Key {
			return nil, fmt.Errorf("%w: entry %d is out of key order", ErrCorruptWeights, i)
		}
		out[i] = w
	}
	return out, nil
}

func cutMagic(data []byte) ([]byte, bool) {
	if len(data) < len(weightMagic) || string(data[:len(weightMagic)]) != weightMagic {
		return nil, false
	}
	return data[len(weightMagic):], true
}

// MergeWeights returns the weight of each key over lists, the weight
// lists of several members: the largest class any of them gives it.
// During a handover the old and the new owner may both publish a class
// for a target; the largest is a rule every member applies alike to what
// it read at one etcd revision, whatever the order of the lists. It is a
// pure function.
func MergeWeights(lists ...[]Weight) map[uint64]uint64 {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make(map[uint64]uint64, n)
	for _, l := range lists {
		for _, w := range l {
			if w.Class > out[w.Key] {
				out[w.Key] = w.Class
			}
		}
	}
	return out
}

// HasWeight reports whether list, sorted by key as DecodeWeights returns
// it, holds key.
func HasWeight(list []Weight, key uint64) bool {
	_, ok := slices.BinarySearchFunc(list, key, func(w Weight, k uint64) int { return cmp.Compare(w.Key, k) })
	return ok
}
