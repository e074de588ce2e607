package targets

import (
	"bytes"
	"encoding/hex"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestClassCode: every class has a one-byte code that gives it back, in
// increasing order, and no other byte decodes.
func TestClassCode(t *testing.T) {
	t.Parallel()
	var classes []uint64
	for c := uint64(1); c <= MaxWeightClass; c = classAbove(c) {
		classes = append(classes, c)
	}
	if len(classes) != int(maxClassCode) {
		t.Fatalf("%d classes, max code %d", len(classes), maxClassCode)
	}
	for i, c := range classes {
		if WeightClass(c) != c {
			t.Fatalf("class %d is not a fixed point of WeightClass", c)
		}
		if b := classCode(c); int(b) != i+1 || codeClass(b) != c {
			t.Fatalf("class %d: code %d gives %d; want code %d", c, b, codeClass(b), i+1)
		}
		if i > 0 && classBelow(c) != classes[i-1] {
			t.Fatalf("class below %d is %d, want %d", c, classBelow(c), classes[i-1])
		}
	}
	for _, b := range []byte{0, maxClassCode + 1, 255} {
		if codeClass(b) != 0 {
			t.Errorf("code %d decodes to %d", b, codeClass(b))
		}
	}
	// Every count's class is one of them.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		s := rng.Uint64N(1 << rng.IntN(42))
		if c := WeightClass(s); c != 0 && !slices.Contains(classes, c) {
			t.Fatalf("WeightClass(%d) = %d, not a class", s, c)
		}
	}
}

// TestWeightsRoundTrip: what EncodeWeights writes DecodeWeights reads
// back sorted, one entry per key (the largest class), zero classes left
// out, off-grid classes rounded; the order of the input does not matter.
func TestWeightsRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	var ws []Weight
	want := map[uint64]uint64{}
	for i := range 5000 {
		w := Weight{Key: rng.Uint64(), Class: rng.Uint64N(1 << rng.IntN(30))}
		if i%10 == 0 && len(ws) > 0 {
			w.Key = ws[rng.IntN(len(ws))].Key // a key given twice
		}
		ws = append(ws, w)
		if c := WeightClass(w.Class); c > want[w.Key] {
			want[w.Key] = c
		}
	}
	data, dropped := EncodeWeights(ws)
	if dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	got, err := DecodeWeights(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(data) != 4+9*len(want) {
		t.Fatalf("%d weights in %d bytes, want %d", len(got), len(data), len(want))
	}
	for _, w := range got {
		if want[w.Key] != w.Class {
			t.Fatalf("key %x: class %d, want %d", w.Key, w.Class, want[w.Key])
		}
	}
	slices.Reverse(ws)
	if again, _ := EncodeWeights(ws); !bytes.Equal(again, data) {
		t.Fatal("another order of the same weights encodes differently")
	}
	if data, _ := EncodeWeights(nil); string(data) != weightMagic {
		t.Fatalf("empty list encodes to %q", data)
	}
}

// TestWeightsPinned: the encoding and the key of a target are part of
// the protocol between members, which must agree across versions during
// a rolling upgrade.
func TestWeightsPinned(t *testing.T) {
	t.Parallel()
	id := Target{Address: "10.0.0.1:9100"}.ID("node")
	if k := WeightKey(id); k != 0xfcab2cfc39f2176a {
		t.Errorf("WeightKey = %#x", k)
	}
	data, _ := EncodeWeights([]Weight{{Key: 2, Class: 1200}, {Key: 1, Class: 3}, {Key: 1 << 63, Class: MaxWeightClass}})
	if got := hex.EncodeToString(data); got != "70667731"+"000000000000000103"+"000000000000000225"+"80000000000000009c" {
		t.Errorf("encoding %s", got)
	}
}

// TestEncodeWeightsBound: a list beyond MaxWeights keeps the heaviest
// within MaxWeightBytes.
func TestEncodeWeightsBound(t *testing.T) {
	t.Parallel()
	ws := make([]Weight, MaxWeights+100)
	for i := range ws {
		ws[i] = Weight{Key: uint64(i) * 0x9E3779B97F4A7C15, Class: 16}
	}
	for i := range 50 {
		ws[i*1000].Class = 4096
	}
	data, dropped := EncodeWeights(ws)
	if dropped != 100 || len(data) > MaxWeightBytes {
		t.Fatalf("dropped %d, %d bytes", dropped, len(data))
	}
	got, err := DecodeWeights(data)
	if err != nil {
		t.Fatal(err)
	}
	heavy := 0
	for _, w := range got {
		if w.Class == 4096 {
			heavy++
		}
	}
	if heavy != 50 || len(got) != MaxWeights {
		t.Fatalf("%d weights kept, %d heavy; want %d, 50", len(got), heavy, MaxWeights)
	}
}

// TestDecodeWeightsCorrupt: anything EncodeWeights would not write is
// refused.
func TestDecodeWeightsCorrupt(t *testing.T) {
	t.Parallel()
	good, _ := EncodeWeights([]Weight{{Key: 1, Class: 8}, {Key: 2, Class: 16}})
	cases := map[string][]byte{
		"empty":        nil,
		"magic":        append([]byte("pfw2"), good[4:]...),
		"length":       good[:len(good)-1],
		"order":        append(append([]byte(weightMagic), good[13:]...), good[4:13]...),
		"repeated key": append(slices.Clone(good[:13]), good[4:13]...),
		"class 0":      append(slices.Clone(good[:12]), 0),
		"class code":   append(slices.Clone(good[:12]), maxClassCode+1),
		"too large":    append([]byte(weightMagic), make([]byte, MaxWeightBytes)...),
	}
	for name, data := range cases {
		if _, err := DecodeWeights(data); !errors.Is(err, ErrCorruptWeights) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// TestMergeWeights: the largest class of a key wins, whatever the order
// of the lists.
func TestMergeWeights(t *testing.T) {
	t.Parallel()
	a := []Weight{{1, 8}, {2, 1024}, {3, 5}}
	b := []Weight{{2, 896}, {4, 7}}
	c := []Weight{{1, 10}}
	want := map[uint64]uint64{1: 10, 2: 1024, 3: 5, 4: 7}
	for _, lists := range [][][]Weight{{a, b, c}, {c, b, a}, {b, a, c}} {
		if got := MergeWeights(lists...); !maps.Equal(got, want) {
			t.Errorf("merge %v = %v, want %v", lists, got, want)
		}
	}
	if !HasWeight(a, 2) || HasWeight(a, 4) || HasWeight(nil, 1) {
		t.Error("HasWeight")
	}
}

// TestNextClass: the published class follows the count once it reaches
// a neighbouring class, and not before.
func TestNextClass(t *testing.T) {
	t.Parallel()
	cases := []struct{ prev, samples, want uint64 }{
		{0, 1000, 1024},
		{0, 3, 3},
		{1024, 1024, 1024},
		{1024, 1100, 1024}, // WeightClass 1024
		{1024, 1200, 1024}, // WeightClass 1280, but below the next class
		{1024, 1279, 1024},
		{1024, 1280, 1280},
		{1024, 5000, 5120},
		{1024, 950, 1024}, // WeightClass 896, above it
		{1024, 896, 896},
		{1024, 10, 10},
		{1280, 1100, 1280},
		{1280, 1024, 1024},
		{8, 7, 7},
		{8, 9, 8}, // WeightClass 9 rounds to 10
		{8, 10, 10},
		{1, 2, 2},
		{MaxWeightClass, 1 << 50, MaxWeightClass},
	}
	for _, c := range cases {
		if got := NextClass(c.prev, c.samples); got != c.want {
			t.Errorf("NextClass(%d, %d) = %d, want %d", c.prev, c.samples, got, c.want)
		}
	}
	// A count hovering around the boundary of 1024 and 1280 (1152)
	// changes the class once, when it first crosses it, never back.
	prev, changes := uint64(0), 0
	for i := range 1000 {
		s := uint64(1152 - 40 + i*37%80)
		if n := NextClass(prev, s); n != prev {
			prev, changes = n, changes+1
		}
	}
	if changes != 1 {
		t.Errorf("a count hovering around 1152 changed the class %d times", changes)
	}
}

// TestWeightsThroughAssign runs the path of a running cluster: each
// member publishes the classes of the targets it scraped, a target
// being handed over appears in two lists with different classes, every
// member decodes and merges the lists in its own order and assigns: all
// get the same owners, and with 1% of the targets 100x heavier samples
// per member stay within 1.2 times the ideal. Without the weights the
// heavy targets pile up.
func TestWeightsThroughAssign(t *testing.T) {
	t.Parallel()
	ms := memberNames(10)
	refs := heavyRefs(2000, false, 11)
	flat := make([]Ref, len(refs))
	for i, r := range refs {
		flat[i] = Ref{ID: r.ID}
	}
	res, err := Assign(DefaultConfig(), ms, flat)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("without weights the busiest scrapes %.3fx the ideal samples", heaviest(ms, refs, res.Owners))
	// Each member publishes what it scraped under the unweighted owners;
	// member 0 also still holds a stale, lower class for a target it
	// handed over to member 1.
	lists := map[string][]Weight{}
	for i, r := range refs {
		o := res.Owners[i]
		lists[o] = append(lists[o], Weight{Key: WeightKey(r.ID), Class: NextClass(0, r.Samples)})
	}
	stale := slices.IndexFunc(res.Owners, func(o string) bool { return o == ms[1] })
	lists[ms[0]] = append(lists[ms[0]], Weight{Key: WeightKey(refs[stale].ID), Class: 1})
	var encoded [][]byte
	for _, m := range ms {
		data, _ := EncodeWeights(lists[m])
		encoded = append(encoded, data)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var first []string
	for range 3 {
		rng.Shuffle(len(encoded), func(i, j int) { encoded[i], encoded[j] = encoded[j], encoded[i] })
		var decoded [][]Weight
		for _, data := range encoded {
			ws, err := DecodeWeights(data)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, ws)
		}
		merged := MergeWeights(decoded...)
		in := make([]Ref, len(refs))
		for i, r := range refs {
			in[i] = Ref{ID: r.ID, Samples: merged[WeightKey(r.ID)]}
		}
		res, err := Assign(DefaultConfig(), ms, in)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res.Owners
			h := heaviest(ms, refs, res.Owners)
			t.Logf("with the published weights the busiest scrapes %.3fx the ideal samples", h)
			if h > 1.2 {
				t.Errorf("busiest %.3f, want <= 1.2", h)
			}
		} else if !slices.Equal(first, res.Owners) {
			t.Fatal("members merging the lists in another order get other owners")
		}
	}
}
