package targets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/cluster/keys"
)

func space(t testing.TB) keys.Space {
	t.Helper()
	s, err := keys.New("prod")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sample returns a few targets, not canonical: labels out of order, a
// duplicate target.
func sample() []Target {
	return []Target{
		{Address: "db-2:9187", Labels: []Label{{"env", "prod"}, {"__metrics_path__", "/metrics"}}},
		{Address: "db-1:9187", Labels: []Label{{"zone", "eu-1"}, {"env", "prod"}}},
		{Address: "db-1:9187", Labels: []Label{{"env", "prod"}, {"zone", "eu-1"}}},
		{Address: "db-1:9187", Labels: []Label{{"env", "dev"}}},
		{Address: "db-1:9187"},
		{Address: "ünïcode:1", Labels: []Label{{"a", ""}}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	s := space(t)
	want, err := Canonical(sample())
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 5 || want[0].Address != "db-1:9187" || want[0].Labels != nil || want[1].Labels[0].Value != "dev" {
		t.Fatalf("canonical form %v", want)
	}
	for _, chunk := range []int{MinChunkBytes, 100, DefaultChunkBytes} {
		p, err := Encode(s, "postgres", sample(), CodecConfig{ChunkBytes: chunk})
		if err != nil {
			t.Fatal(err)
		}
		got := decodePublication(t, s, p)
		if !equalSets(got, want) {
			t.Fatalf("chunks of %d: decoded %v, want %v", chunk, got, want)
		}
		if p.ManifestKey != "/procfleet/prod/targets/postgres" {
			t.Errorf("manifest key %q", p.ManifestKey)
		}
		for i, c := range p.Chunks {
			if len(c.Value) > chunk || c.Key != fmt.Sprintf("/procfleet/prod/target-chunks/postgres/%s/%06d", p.Manifest.Generation(), i) {
				t.Errorf("chunk %d: key %q, %d bytes", i, c.Key, len(c.Value))
			}
		}
	}
}

// decodePublication decodes p as a reader would, chunks in reverse order.
func decodePublication(t testing.TB, s keys.Space, p Publication) []Target {
	t.Helper()
	m, err := ParseManifest(p.ManifestValue)
	if err != nil {
		t.Fatal(err)
	}
	if m != p.Manifest {
		t.Fatalf("parsed manifest %+v, encoded %+v", m, p.Manifest)
	}
	prefix, err := m.ChunkPrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	chunks := slices.Clone(p.Chunks)
	slices.Reverse(chunks)
	for _, c := range chunks {
		if !strings.HasPrefix(c.Key, prefix) {
			t.Fatalf("chunk %q outside %q", c.Key, prefix)
		}
	}
	ts, err := Decode(s, m, chunks)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func equalSets(a, b []Target) bool {
	return slices.EqualFunc(a, b, func(x, y Target) bool { return CompareTargets(x, y) == 0 })
}

// TestEncodeDeterministic: the same set in any order gives the same
// publication; another set another generation; Unchanged tells them apart.
func TestEncodeDeterministic(t *testing.T) {
	t.Parallel()
	s := space(t)
	ts := realisticTargets(2000, 1)
	p1, err := Encode(s, "node", ts, DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(ts)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	p2, err := Encode(s, "node", shuffled, DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p1.ManifestValue, p2.ManifestValue) || !slices.EqualFunc(p1.Chunks, p2.Chunks, func(a, b KeyValue) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
	}) {
		t.Fatal("shuffled targets encode differently")
	}
	if !p2.Unchanged(p1.ManifestValue) {
		t.Error("Unchanged: false for the same set")
	}
	if d, err := Digest(shuffled); err != nil || d != p1.Manifest.SHA256 {
		t.Errorf("Digest = %q, %v; the manifest has %q", d, err, p1.Manifest.SHA256)
	}
	p3, err := Encode(s, "node", ts[1:], DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	if p3.Unchanged(p1.ManifestValue) || p3.Manifest.Generation() == p1.Manifest.Generation() {
		t.Error("a changed set is Unchanged or keeps its generation")
	}
	other, err := Encode(s, "node2", ts, DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, cur := range [][]byte{nil, []byte("{"), other.ManifestValue} {
		if p1.Unchanged(cur) {
			t.Errorf("Unchanged(%q) = true", cur)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	s := space(t)
	for _, c := range []struct {
		name string
		job  string
		ts   []Target
		cfg  CodecConfig
		want error
	}{
		{"empty address", "j", []Target{{Labels: []Label{{"a", "b"}}}}, DefaultCodecConfig(), ErrInvalidTarget},
		{"empty label name", "j", []Target{{Address: "a", Labels: []Label{{"", "b"}}}}, DefaultCodecConfig(), ErrInvalidTarget},
		{"label twice", "j", []Target{{Address: "a", Labels: []Label{{"x", "1"}, {"x", "2"}}}}, DefaultCodecConfig(), ErrInvalidTarget},
		{"empty job", "", nil, DefaultCodecConfig(), keys.ErrInvalidName},
		{"chunks too small", "j", nil, CodecConfig{ChunkBytes: 10}, ErrInvalidConfig},
		{"chunks too large", "j", nil, CodecConfig{ChunkBytes: MaxChunkBytes + 1}, ErrInvalidConfig},
		{"too many chunks", "j", randomTargets(5000, 5), CodecConfig{ChunkBytes: MinChunkBytes}, ErrTooLarge},
	} {
		if _, err := Encode(s, c.job, c.ts, c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// An empty set is a set.
	p, err := Encode(s, "j", nil, DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := decodePublication(t, s, p); len(got) != 0 || p.Manifest.Targets != 0 {
		t.Errorf("empty set: %v", got)
	}
}

// TestDecodeCorrupt: every way the stored keys can disagree with the
// manifest is refused with ErrCorrupt.
func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	s := space(t)
	p, err := Encode(s, "node", realisticTargets(3000, 2), CodecConfig{ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Chunks) < 3 {
		t.Fatalf("%d chunks, want 3 or more", len(p.Chunks))
	}
	other, err := Encode(s, "node", realisticTargets(3000, 3), CodecConfig{ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	clone := func() []KeyValue {
		out := make([]KeyValue, len(p.Chunks))
		for i, c := range p.Chunks {
			out[i] = KeyValue{Key: c.Key, Value: bytes.Clone(c.Value)}
		}
		return out
	}
	m := p.Manifest
	for _, c := range []struct {
		name   string
		m      func(*Manifest)
		chunks func([]KeyValue) []KeyValue
	}{
		{"missing chunk", nil, func(cs []KeyValue) []KeyValue { return cs[1:] }},
		{"extra chunk", nil, func(cs []KeyValue) []KeyValue {
			k, _ := s.TargetChunk("node", m.Generation(), len(cs))
			return append(cs, KeyValue{Key: k, Value: []byte{1}})
		}},
		{"chunk twice", nil, func(cs []KeyValue) []KeyValue { cs[1] = cs[0]; return cs }},
		{"other generation", nil, func(cs []KeyValue) []KeyValue { cs[0].Key = other.Chunks[0].Key; return cs }},
		{"other job", nil, func(cs []KeyValue) []KeyValue {
			cs[0].Key = strings.Replace(cs[0].Key, "/node/", "/nodf/", 1)
			return cs
		}},
		{"flipped bit", nil, func(cs []KeyValue) []KeyValue { cs[1].Value[100] ^= 4; return cs }},
		{"truncated", nil, func(cs []KeyValue) []KeyValue { cs[2].Value = cs[2].Value[:len(cs[2].Value)-1]; return cs }},
		{"swapped", nil, func(cs []KeyValue) []KeyValue { cs[0].Value, cs[1].Value = cs[1].Value, cs[0].Value; return cs }},
		{"empty chunk", nil, func(cs []KeyValue) []KeyValue { cs[1].Value = nil; return cs }},
		{"other generation's hash", func(m *Manifest) { m.SHA256 = other.Manifest.SHA256[:32] + m.SHA256[32:] }, nil},
		{"other hash", func(m *Manifest) { m.SHA256 = m.SHA256[:32] + other.Manifest.SHA256[32:] }, nil},
		{"more raw bytes", func(m *Manifest) { m.RawBytes++ }, nil},
		{"fewer raw bytes", func(m *Manifest) { m.RawBytes-- }, nil},
		{"more targets", func(m *Manifest) { m.Targets++ }, nil},
		{"more bytes", func(m *Manifest) { m.Bytes++ }, nil},
		{"format 2", func(m *Manifest) { m.Format = 2 }, nil},
		{"zstd", func(m *Manifest) { m.Encoding = "zstd" }, nil},
		{"huge", func(m *Manifest) { m.RawBytes = MaxRawBytes + 1 }, nil},
	} {
		mm := m
		if c.m != nil {
			c.m(&mm)
		}
		cs := clone()
		if c.chunks != nil {
			cs = c.chunks(cs)
		}
		if ts, err := Decode(s, mm, cs); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %d targets, %v; want ErrCorrupt", c.name, len(ts), err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if _, err := Decode(s, m, clone()); err != nil {
		t.Fatalf("the chunks were changed in place: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	t.Parallel()
	s := space(t)
	p, err := Encode(s, "a/b", sample(), DefaultCodecConfig())
	if err != nil {
		t.Fatal(err)
	}
	if p.ManifestKey != "/procfleet/prod/targets/a%2Fb" {
		t.Errorf("manifest key %q", p.ManifestKey)
	}
	var fields map[string]any
	if err := json.Unmarshal(p.ManifestValue, &fields); err != nil {
		t.Fatal(err)
	}
	t.Logf("manifest: %s", p.ManifestValue)
	for _, bad := range []string{
		``, `null`, `[]`, `{}`, `{"format":1}`,
		strings.Replace(string(p.ManifestValue), `"format":1`, `"format":1,"extra":2`, 1),
		string(p.ManifestValue) + `{}`,
		strings.Replace(string(p.ManifestValue), `"job":"a/b"`, `"job":""`, 1),
		strings.Replace(string(p.ManifestValue), p.Manifest.SHA256, strings.ToUpper(p.Manifest.SHA256), 1),
		strings.Replace(string(p.ManifestValue), `"chunks":1`, `"chunks":0`, 1),
		strings.Replace(string(p.ManifestValue), `"chunks":1`, fmt.Sprintf(`"chunks":%d`, MaxChunks+1), 1),
		strings.Replace(string(p.ManifestValue), `"targets":5`, `"targets":-1`, 1),
	} {
		if m, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseManifest(%s) = %+v, %v; want ErrCorrupt", bad, m, err)
		}
	}
}

func TestTargetID(t *testing.T) {
	t.Parallel()
	a := Target{Address: "h:1", Labels: []Label{{"b", "2"}, {"a", "1"}}}
	b := Target{Address: "h:1", Labels: []Label{{"a", "1"}, {"b", "2"}}}
	if a.ID("j") != b.ID("j") {
		t.Error("label order changes the ID")
	}
	if a.Labels[0].Name != "b" {
		t.Error("ID sorted the caller's labels")
	}
	ids := map[string]bool{}
	for _, t2 := range []Target{
		b, {Address: "h:1"}, {Address: "h:2", Labels: b.Labels},
		{Address: "h:1", Labels: []Label{{"a", "12"}}}, {Address: "h:1", Labels: []Label{{"a1", "2"}}},
		{Address: "h:1", Labels: []Label{{"a", "1"}, {"b", "3"}}},
	} {
		ids[t2.ID("j")] = true
	}
	ids[b.ID("k")] = true
	if len(ids) != 7 {
		t.Errorf("%d distinct IDs of 7 targets", len(ids))
	}
	if got, want := b.ID("j"), "j\x00h:1\x00"; !strings.HasPrefix(got, want) || len(got) != len(want)+32 {
		t.Errorf("ID %q", got)
	}
}

// TestCanonicalLeavesInput: Canonical sorts copies, never the caller's
// labels.
func TestCanonicalLeavesInput(t *testing.T) {
	t.Parallel()
	in := sample()
	before := fmt.Sprint(in)
	if _, err := Canonical(in); err != nil {
		t.Fatal(err)
	}
	if _, err := Encode(space(t), "j", in, DefaultCodecConfig()); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(in); after != before {
		t.Errorf("input changed: %s, was %s", after, before)
	}
}
