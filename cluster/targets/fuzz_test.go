package targets

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzTargets turns fuzz bytes into targets: records split by 0xff, each
// an address and then label names and values split by 0xfe.
func fuzzTargets(data []byte) []Target {
	var ts []Target
	for _, rec := range bytes.Split(data, []byte{0xff}) {
		fields := bytes.Split(rec, []byte{0xfe})
		t := Target{Address: string(fields[0])}
		for k := 1; k+1 < len(fields); k += 2 {
			t.Labels = append(t.Labels, Label{Name: string(fields[k]), Value: string(fields[k+1])})
		}
		ts = append(ts, t)
	}
	return ts
}

// FuzzCodecRoundTrip: whatever the targets, Encode either refuses them as
// invalid or encodes them so that Decode gives back their canonical form.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add([]byte("db-1:9187\xfeenv\xfeprod\xffdb-2:9187\xfezone\xfeeu-1\xfeenv\xfedev"), uint16(0))
	f.Add([]byte("a\xffa\xffb\xfex\xfe\xfex\xfe1"), uint16(7))
	f.Add([]byte("\xff"), uint16(100))
	f.Add(bytes.Repeat([]byte("host:9100\xfejob\xfenode\xff"), 200), uint16(3))
	s := space(f)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		ts := fuzzTargets(data)
		p, err := Encode(s, "fuzz", ts, CodecConfig{ChunkBytes: MinChunkBytes + int(chunk)%4096})
		want, cerr := Canonical(ts)
		if err != nil {
			if !errors.Is(err, ErrInvalidTarget) || cerr == nil {
				t.Fatalf("Encode: %v; Canonical: %v", err, cerr)
			}
			return
		}
		if got := decodePublication(t, s, p); !equalSets(got, want) {
			t.Fatalf("decoded %q, want %q", got, want)
		}
		if d, err := Digest(ts); err != nil || d != p.Manifest.SHA256 {
			t.Fatalf("Digest %q, %v; manifest %q", d, err, p.Manifest.SHA256)
		}
	})
}

// FuzzDecodeRaw: the decoder never panics, and accepts only what the
// encoder writes: a set has one encoding, so its hash names it.
func FuzzDecodeRaw(f *testing.F) {
	for _, ts := range [][]Target{nil, sample(), realisticTargets(3, 1)} {
		c, err := Canonical(ts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeRaw(nil, c))
	}
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0x01, 0x01, 'a', 0x01, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.Clone(data) // decodeRaw keeps it
		ts, err := decodeRaw(data)
		if err != nil {
			return
		}
		if again := encodeRaw(nil, ts); !bytes.Equal(again, data) {
			t.Fatalf("decoded %q from %x, which encodes to %x", ts, data, again)
		}
		if c, err := Canonical(ts); err != nil || !equalSets(c, ts) {
			t.Fatalf("decoded %q, not canonical: %v", ts, err)
		}
	})
}

// FuzzDecode: whatever the manifest and chunks, Decode never panics, and
// what it accepts is the set the manifest names.
func FuzzDecode(f *testing.F) {
	s := space(f)
	ts := realisticTargets(20, 1)
	whole, err := Encode(s, "fuzz", ts, DefaultCodecConfig())
	if err != nil {
		f.Fatal(err)
	}
	// In two chunks, as the fuzz function passes them.
	p, err := Encode(s, "fuzz", ts, CodecConfig{ChunkBytes: int(whole.Manifest.Bytes+1) / 2})
	if err != nil || len(p.Chunks) != 2 {
		f.Fatalf("%d chunks, want 2: %v", len(p.Chunks), err)
	}
	f.Add(p.ManifestValue, p.Chunks[0].Value, p.Chunks[1].Value)
	f.Add(whole.ManifestValue, whole.Chunks[0].Value, []byte(nil))
	f.Add([]byte(`{"format":1}`), []byte{0x1f, 0x8b}, []byte(nil))
	f.Fuzz(func(t *testing.T, manifest, chunk0, chunk1 []byte) {
		m, err := ParseManifest(manifest)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseManifest: %v, not ErrCorrupt", err)
			}
			return
		}
		var chunks []KeyValue
		for i, v := range [][]byte{chunk0, chunk1} {
			k, err := s.TargetChunk(m.Job, m.Generation(), i)
			if err != nil {
				t.Fatal(err)
			}
			chunks = append(chunks, KeyValue{Key: k, Value: v})
		}
		ts, err := Decode(s, m, chunks[:min(len(chunks), m.Chunks)])
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode: %v, not ErrCorrupt", err)
			}
			return
		}
		if d, err := Digest(ts); err != nil || d != m.SHA256 || len(ts) != m.Targets {
			t.Fatalf("decoded %d targets of digest %q (%v), manifest %+v", len(ts), d, err, m)
		}
	})
}
