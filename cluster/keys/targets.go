package keys

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The keys of published scrape targets (package cluster/targets encodes
// their values):
//
//	targets/<job>                            a job's manifest: the set's hash and size
//	target-chunks/<job>/<generation>/<n>     chunk n of the set named by generation
//
// Manifests and chunks have separate prefixes so that a member can watch
// targets/ for manifests alone and fetch a set's chunks once, at the
// manifest's revision. <job> is the job name escaped as a URL path segment
// (url.PathEscape), so that a name with '/' stays one key component;
// plain names (node, postgres-prod) are unchanged.

// MaxJobLen is the longest job name accepted, in bytes before escaping.
const MaxJobLen = 512

// ValidateJob checks a scrape job name: 1 to MaxJobLen bytes of UTF-8.
// Any character is allowed; keys escape the name.
func ValidateJob(job string) error {
	switch {
	case job == "":
		return fmt.Errorf("%w: empty job name", ErrInvalidName)
	case len(job) > MaxJobLen:
		return fmt.Errorf("%w: job name %.20q... is %d bytes long; at most %d are accepted", ErrInvalidName, job, len(job), MaxJobLen)
	case !utf8.ValidString(job):
		return fmt.Errorf("%w: job name %q is not valid UTF-8", ErrInvalidName, job)
	}
	return nil
}

// Targets returns the prefix of the manifests of all jobs' published
// targets.
func (s Space) Targets() string { return s.Prefix() + "targets/" }

// TargetsManifest returns the key of job's manifest.
func (s Space) TargetsManifest(job string) (string, error) {
	if err := ValidateJob(job); err != nil {
		return "", err
	}
	return s.Targets() + url.PathEscape(job), nil
}

// ParseTargetsManifest returns the job of a TargetsManifest key.
func (s Space) ParseTargetsManifest(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.Targets())
	if !ok {
		return "", false
	}
	return parseJob(rest)
}

// TargetChunks returns the prefix of the chunks of all jobs.
func (s Space) TargetChunks() string { return s.Prefix() + "target-chunks/" }

// TargetChunksOf returns the prefix of job's chunks, of every generation:
// what a publisher lists to delete the generations no manifest names.
func (s Space) TargetChunksOf(job string) (string, error) {
	if err := ValidateJob(job); err != nil {
		return "", err
	}
	return s.TargetChunks() + url.PathEscape(job) + "/", nil
}

// TargetChunksGen returns the prefix of the chunks of one generation of
// job's targets. generation is 1 to 64 lower-case hex digits.
func (s Space) TargetChunksGen(job, generation string) (string, error) {
	p, err := s.TargetChunksOf(job)
	if err != nil {
		return "", err
	}
	if !validGeneration(generation) {
		return "", fmt.Errorf("%w: target generation %q, want 1 to 64 lower-case hex digits", ErrInvalidName, generation)
	}
	return p + generation + "/", nil
}

// MaxTargetChunks is one more than the highest chunk number a key takes.
const MaxTargetChunks = 1000000

// TargetChunk returns the key of chunk n (0 to MaxTargetChunks-1) of a
// generation of job's targets. The number is zero-padded to 6 digits, so
// that keys sort in chunk order.
func (s Space) TargetChunk(job, generation string, n int) (string, error) {
	p, err := s.TargetChunksGen(job, generation)
	if err != nil {
		return "", err
	}
	if n < 0 || n >= MaxTargetChunks {
		return "", fmt.Errorf("%w: target chunk %d, want 0 to %d", ErrInvalidName, n, MaxTargetChunks-1)
	}
	return fmt.Sprintf("%s%06d", p, n), nil
}

// ParseTargetChunk returns the job, generation and number of a TargetChunk
// key.
func (s Space) ParseTargetChunk(key string) (job, generation string, n int, ok bool) {
	rest, ok := strings.CutPrefix(key, s.TargetChunks())
	if !ok {
		return "", "", 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || len(parts[2]) != 6 || !validGeneration(parts[1]) {
		return "", "", 0, false
	}
	for _, c := range parts[2] {
		if c < '0' || c > '9' {
			return "", "", 0, false
		}
	}
	job, ok = parseJob(parts[0])
	n, err := strconv.Atoi(parts[2])
	if !ok || err != nil {
		return "", "", 0, false
	}
	return job, parts[1], n, true
}

// parseJob returns the job of an escaped job name, which must be in the
// form TargetsManifest writes.
func parseJob(escaped string) (string, bool) {
	job, err := url.PathUnescape(escaped)
	if err != nil || ValidateJob(job) != nil || url.PathEscape(job) != escaped {
		return "", false
	}
	return job, true
}

func validGeneration(g string) bool {
	if g == "" || len(g) > 64 {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
