package targets

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/procfleet/procfleet/cluster/keys"
)

// Errors of the codec, checked with errors.Is.
var (
	// ErrTooLarge reports a target set that does not fit in MaxChunks
	// chunks, or whose encoding exceeds MaxRawBytes.
	ErrTooLarge = errors.New("targets: target set too large")
	// ErrCorrupt reports a manifest or chunks that Decode cannot accept:
	// malformed, for another job, missing or extra chunks, or a set whose
	// hash is not the manifest's.
	ErrCorrupt = errors.New("targets: corrupt published target set")
)

// Limits of the codec.
const (
	// DefaultChunkBytes is CodecConfig.ChunkBytes' default: below etcd's
	// advice of values of 1 MiB at most, and, with its key, well below
	// its default request limit of 1.5 MiB (--max-request-bytes), so
	// each chunk goes in a Put of its own.
	DefaultChunkBytes = 768 << 10
	// MaxChunkBytes is the largest CodecConfig.ChunkBytes.
	MaxChunkBytes = 1 << 20
	// MinChunkBytes is the smallest CodecConfig.ChunkBytes.
	MinChunkBytes = 64
	// MaxChunks is the most chunks a set takes: 3 GiB of compressed
	// targets at the default chunk size, far beyond 100,000 targets.
	MaxChunks = 4096
	// MaxRawBytes bounds the uncompressed encoding of a set, and so what
	// Decode allocates whatever a manifest claims.
	MaxRawBytes = 1 << 30
)

// Format is the manifest's format number that this package writes and
// reads.
const Format = 1

// encodingGzip names the compression of the chunks in the manifest.
const encodingGzip = "gzip"

// CodecConfig tunes Encode. Decode needs none: the manifest says all.
type CodecConfig struct {
	// ChunkBytes is the largest chunk value, in bytes; MinChunkBytes to
	// MaxChunkBytes. Default DefaultChunkBytes (768 KiB).
	ChunkBytes int
}

// DefaultCodecConfig returns the CodecConfig publishers use.
func DefaultCodecConfig() CodecConfig { return CodecConfig{ChunkBytes: DefaultChunkBytes} }

// Validate reports whether c is usable.
func (c CodecConfig) Validate() error {
	if c.ChunkBytes < MinChunkBytes || c.ChunkBytes > MaxChunkBytes {
		return fmt.Errorf("%w: chunk bytes %d, want %d to %d", ErrInvalidConfig, c.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	return nil
}

// Manifest describes a published target set. It is stored as JSON under
// keys.Space.TargetsManifest(Job).
type Manifest struct {
	// Format is the format number, Format.
	Format int `json:"format"`
	// Job is the job's name.
	Job string `json:"job"`
	// SHA256 is the hex SHA-256 of the set's uncompressed encoding: two
	// manifests of equal SHA256 name the same set. Its first 32 digits
	// are the generation that names the chunks (Generation).
	SHA256 string `json:"sha256"`
	// Targets is how many targets the set has.
	Targets int `json:"targets"`
	// Chunks is how many chunks hold the set, numbered from 0.
	Chunks int `json:"chunks"`
	// RawBytes is the length of the uncompressed encoding.
	RawBytes int64 `json:"raw_bytes"`
	// Bytes is the length of the compressed encoding, all chunks
	// together.
	Bytes int64 `json:"bytes"`
	// Encoding is the compression of the chunks: "gzip".
	Encoding string `json:"encoding"`
}

// Generation returns the generation of the set: the first 32 hex digits
// of SHA256. Chunks live under keys.Space.TargetChunksGen(Job,
// Generation()). m must have passed ParseManifest or come from Encode.
func (m Manifest) Generation() string { return m.SHA256[:32] }

// ChunkPrefix returns the prefix of m's chunks in space: what a reader
// gets, at the manifest's revision, to give to Decode.
func (m Manifest) ChunkPrefix(space keys.Space) (string, error) {
	return space.TargetChunksGen(m.Job, m.Generation())
}

// KeyValue is an etcd key and its value.
type KeyValue struct {
	Key   string
	Value []byte
}

// Publication is a job's target set, encoded for etcd.
//
// A publisher (the member elected to run discovery) writes it thus:
//
//  1. Unless Unchanged(the value now under ManifestKey) (Digest tells
//     as much before encoding): put every
//     chunk (one Put each: a chunk and its key stay below 1 MiB), then
//     put ManifestKey = ManifestValue, in a transaction conditional on
//     still being the elected member. Chunks go first, so that any
//     revision at which the manifest names a generation holds all its
//     chunks; equal sets have equal chunk keys, so rewriting one after a
//     crash is harmless.
//  2. Delete the chunks, under keys.Space.TargetChunksOf(job), of every
//     generation but this one: the set replaced, and any left by a
//     publisher that failed between its chunks and its manifest.
//  3. When the job is gone from the config, delete its manifest, then
//     its chunks.
//
// A reader (every member) watches keys.Space.Targets() for manifests
// only. On a manifest at revision R, it calls ParseManifest, gets the
// keys under Manifest.ChunkPrefix at revision R (clientv3.WithRev(R)),
// and calls Decode. The set it gets is the one the manifest names, even
// if a newer one has been published since; if etcd has compacted R
// (rpctypes.ErrCompacted), it reads the manifest again at the current
// revision. While it cannot read a new set, it keeps the last one.
type Publication struct {
	// Manifest describes the set.
	Manifest Manifest
	// ManifestKey is keys.Space.TargetsManifest(job).
	ManifestKey string
	// ManifestValue is Manifest as JSON.
	ManifestValue []byte
	// Chunks are the set's chunks, in order, under Manifest.ChunkPrefix.
	Chunks []KeyValue
}

// Unchanged reports whether current, the value under ManifestKey (nil
// when there is none), already names p's set, so that nothing needs to
// be written. A manifest that does not parse names no set.
func (p Publication) Unchanged(current []byte) bool {
	m, err := ParseManifest(current)
	return err == nil && m.Job == p.Manifest.Job && m.SHA256 == p.Manifest.SHA256
}

// Encode encodes job's resolved targets for publication in space. The
// targets are put in canonical form first (see Canonical), so their order
// does not matter. It is a pure function, safe for concurrent use:
// equal sets give equal manifests and chunk keys. It returns
// ErrInvalidConfig, ErrInvalidTarget, keys.ErrInvalidName for a bad job
// name, or ErrTooLarge.
func Encode(space keys.Space, job string, targets []Target, cfg CodecConfig) (Publication, error) {
	if err := cfg.Validate(); err != nil {
		return Publication{}, err
	}
	mkey, err := space.TargetsManifest(job)
	if err != nil {
		return Publication{}, err
	}
	ts, err := Canonical(targets)
	if err != nil {
		return Publication{}, err
	}
	size := rawSize(ts)
	if size > MaxRawBytes {
		return Publication{}, fmt.Errorf("%w: job %q: %d targets take %d bytes, at most %d", ErrTooLarge, job, len(ts), size, MaxRawBytes)
	}
	raw := encodeRaw(make([]byte, 0, size), ts)
	sum := sha256.Sum256(raw)
	z, err := compress(raw)
	if err != nil {
		return Publication{}, err
	}
	n := (len(z) + cfg.ChunkBytes - 1) / cfg.ChunkBytes
	if n > MaxChunks {
		return Publication{}, fmt.Errorf("%w: job %q: %d targets take %d chunks of %d bytes, at most %d", ErrTooLarge, job, len(ts), n, cfg.ChunkBytes, MaxChunks)
	}
	p := Publication{
		Manifest: Manifest{
			Format: Format, Job: job, SHA256: hex.EncodeToString(sum[:]),
			Targets: len(ts), Chunks: n, RawBytes: int64(len(raw)), Bytes: int64(len(z)), Encoding: encodingGzip,
		},
		ManifestKey: mkey,
		Chunks:      make([]KeyValue, n),
	}
	for i := range p.Chunks {
		key, err := space.TargetChunk(job, p.Manifest.Generation(), i)
		if err != nil {
			return Publication{}, err
		}
		p.Chunks[i] = KeyValue{Key: key, Value: z[i*cfg.ChunkBytes : min(len(z), (i+1)*cfg.ChunkBytes)]}
	}
	if p.ManifestValue, err = json.Marshal(p.Manifest); err != nil {
		return Publication{}, fmt.Errorf("cannot encode the manifest of job %q: %w", job, err)
	}
	return p, nil
}

// Digest returns the hex SHA-256 that Encode would put in the manifest
// of targets (Manifest.SHA256), without compressing them: a publisher
// compares it with the current manifest's to learn whether the set
// changed at a fraction of Encode's cost. It returns ErrInvalidTarget
// like Canonical. It is a pure function.
func Digest(targets []Target) (string, error) {
	ts, err := Canonical(targets)
	if err != nil {
		return "", err
	}
	// The encoding, target by target, through one small buffer.
	h := sha256.New()
	buf := binary.AppendUvarint(nil, uint64(len(ts)))
	for i := range ts {
		h.Write(buf)
		buf = encodeTarget(buf[:0], ts[i])
	}
	h.Write(buf)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])), nil
}

// compress gzips raw.
func compress(raw []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(raw)/4 + 64)
	// Level 6 is as fast as 5 here and 3% smaller; 9 is 4 times slower
	// for 12% less.
	w, err := gzip.NewWriterLevel(&b, 6)
	if err != nil {
		return nil, fmt.Errorf("cannot compress targets: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("cannot compress targets: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("cannot compress targets: %w", err)
	}
	return b.Bytes(), nil
}

// ParseManifest parses a manifest value and checks it: the format this
// package reads, a valid job name, a SHA-256, counts within the limits.
// It returns ErrCorrupt otherwise. It is a pure function.
func ParseManifest(value []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w: manifest: data after the object", ErrCorrupt)
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest of job %q: %w", ErrCorrupt, m.Job, err)
	}
	return m, nil
}

// check reports what is wrong with m.
func (m Manifest) check() error {
	switch {
	case m.Format != Format:
		return fmt.Errorf("format %d, this procfleet reads %d", m.Format, Format)
	case m.Encoding != encodingGzip:
		return fmt.Errorf("encoding %q, want %q", m.Encoding, encodingGzip)
	case len(m.SHA256) != 64 || !isLowerHex(m.SHA256):
		return fmt.Errorf("sha256 %q, want 64 lower-case hex digits", m.SHA256)
	case m.Targets < 0 || m.RawBytes < 1 || m.RawBytes > MaxRawBytes || m.Bytes < 1:
		return fmt.Errorf("%d targets, %d raw bytes, %d bytes", m.Targets, m.RawBytes, m.Bytes)
	case m.Chunks < 1 || m.Chunks > MaxChunks || m.Bytes > int64(m.Chunks)*MaxChunkBytes:
		return fmt.Errorf("%d chunks for %d bytes, want 1 to %d chunks of at most %d bytes", m.Chunks, m.Bytes, MaxChunks, MaxChunkBytes)
	}
	return keys.ValidateJob(m.Job)
}

// Decode returns the target set m names, in canonical form, from its
// chunks: the key-values under m.ChunkPrefix(space), in any order. It
// checks that they are exactly m's chunks, that they add up to m.Bytes,
// and that the set's encoding has m's SHA-256; else it returns
// ErrCorrupt. It allocates about m.RawBytes for the targets, plus their
// slices. It is a pure function.
func Decode(space keys.Space, m Manifest, chunks []KeyValue) ([]Target, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: manifest of job %q: %w", ErrCorrupt, m.Job, err)
	}
	z, err := joinChunks(space, m, chunks)
	if err != nil {
		return nil, err
	}
	raw, err := decompress(z, m.RawBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: job %q: %w", ErrCorrupt, m.Job, err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, fmt.Errorf("%w: job %q: the targets' hash is not the manifest's", ErrCorrupt, m.Job)
	}
	ts, err := decodeRaw(raw) // raw is ours alone
	if err != nil {
		return nil, fmt.Errorf("%w: job %q: %w", ErrCorrupt, m.Job, err)
	}
	if len(ts) != m.Targets {
		return nil, fmt.Errorf("%w: job %q: %d targets, the manifest says %d", ErrCorrupt, m.Job, len(ts), m.Targets)
	}
	return ts, nil
}

// joinChunks returns the concatenation of m's chunks.
func joinChunks(space keys.Space, m Manifest, chunks []KeyValue) ([]byte, error) {
	if len(chunks) != m.Chunks {
		return nil, fmt.Errorf("%w: job %q: %d chunks, the manifest says %d", ErrCorrupt, m.Job, len(chunks), m.Chunks)
	}
	order := make([][]byte, m.Chunks)
	var total int64
	for _, c := range chunks {
		job, gen, n, ok := space.ParseTargetChunk(c.Key)
		if !ok || job != m.Job || gen != m.Generation() || n >= m.Chunks || order[n] != nil {
			return nil, fmt.Errorf("%w: job %q: unexpected chunk key %q", ErrCorrupt, m.Job, c.Key)
		}
		if len(c.Value) == 0 || len(c.Value) > MaxChunkBytes {
			return nil, fmt.Errorf("%w: job %q: chunk %q has %d bytes", ErrCorrupt, m.Job, c.Key, len(c.Value))
		}
		order[n] = c.Value
		total += int64(len(c.Value))
	}
	if total != m.Bytes {
		return nil, fmt.Errorf("%w: job %q: chunks hold %d bytes, the manifest says %d", ErrCorrupt, m.Job, total, m.Bytes)
	}
	return bytes.Join(order, nil), nil
}

// decompress gunzips z, which must expand to exactly size bytes.
func decompress(z []byte, size int64) ([]byte, error) {
	br := bytes.NewReader(z) // a ByteReader: gzip reads no further than its member
	r, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress: %w", err)
	}
	r.Multistream(false)
	// gzip expands at most about 1032 times; trust size only that far.
	raw := make([]byte, 0, min(size, 1100*int64(len(z))+64)+1)
	b := bytes.NewBuffer(raw)
	if _, err := b.ReadFrom(io.LimitReader(r, size+1)); err != nil {
		return nil, fmt.Errorf("cannot decompress: %w", err)
	}
	if int64(b.Len()) > size {
		return nil, fmt.Errorf("decompressed to more than the %d bytes the manifest says", size)
	}
	if int64(b.Len()) < size {
		return nil, fmt.Errorf("decompressed to %d bytes, the manifest says %d", b.Len(), size)
	}
	if br.Len() > 0 {
		return nil, fmt.Errorf("%d bytes after the compressed targets", br.Len())
	}
	return b.Bytes(), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
