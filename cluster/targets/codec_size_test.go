package targets

import (
	"testing"
	"time"
)

// TestCodecSize publishes 100,000 targets (10,000 under the race
// detector or with -short): with realistic labels, and with random ones
// that do not compress. Every chunk, with its key, stays within 1 MiB, so
// its Put is well within etcd's default request limit of 1.5 MiB, and the
// set comes back whole.
func TestCodecSize(t *testing.T) {
	t.Parallel()
	n := 100000
	if testing.Short() || raceEnabled {
		n = 10000
	}
	s := space(t)
	for _, c := range []struct {
		name string
		ts   []Target
	}{
		{"realistic labels", realisticTargets(n, 1)},
		{"random labels", randomTargets(n, 2)},
	} {
		start := time.Now()
		p, err := Encode(s, "node", c.ts, DefaultCodecConfig())
		if err != nil {
			t.Fatal(err)
		}
		encoded := time.Since(start)
		largest := 0
		for _, ch := range p.Chunks {
			largest = max(largest, len(ch.Key)+len(ch.Value))
			if len(ch.Value) > 1<<20 {
				t.Errorf("%s: chunk %s holds %d bytes, over 1 MiB", c.name, ch.Key, len(ch.Value))
			}
		}
		if largest > 1<<20 || len(p.ManifestValue) > 1024 {
			t.Errorf("%s: largest chunk with its key %d bytes, manifest %d bytes", c.name, largest, len(p.ManifestValue))
		}
		start = time.Now()
		got := decodePublication(t, s, p)
		decoded := time.Since(start)
		want, err := Canonical(c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if !equalSets(got, want) {
			t.Fatalf("%s: decoded set differs", c.name)
		}
		t.Logf("%s: %d targets, %d raw bytes (%.0f per target), %d compressed (%.1fx) in %d chunks, largest chunk+key %d bytes; encode %v, decode %v",
			c.name, p.Manifest.Targets, p.Manifest.RawBytes, float64(p.Manifest.RawBytes)/float64(p.Manifest.Targets),
			p.Manifest.Bytes, float64(p.Manifest.RawBytes)/float64(p.Manifest.Bytes), len(p.Chunks), largest,
			encoded.Round(time.Millisecond), decoded.Round(time.Millisecond))
	}
}

// BenchmarkEncode is what the discovery member pays for a job of 100,000
// targets on each discovery run (Encode runs even when the set is
// unchanged, to compare hashes).
func BenchmarkEncode(b *testing.B) {
	s := space(b)
	ts := realisticTargets(100000, 1)
	p, err := Encode(s, "node", ts, DefaultCodecConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(p.Manifest.RawBytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(s, "node", ts, DefaultCodecConfig()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is what every member pays for a job of 100,000 targets
// on each change of the set.
func BenchmarkDecode(b *testing.B) {
	s := space(b)
	p, err := Encode(s, "node", realisticTargets(100000, 1), DefaultCodecConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(p.Manifest.RawBytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s, p.Manifest, p.Chunks); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigest is what the discovery member pays for a job of 100,000
// targets on each discovery run when it checks for a change first.
func BenchmarkDigest(b *testing.B) {
	ts := realisticTargets(100000, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Digest(ts); err != nil {
			b.Fatal(err)
		}
	}
}
