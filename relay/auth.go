package relay

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// tokens is the set of accepted bearer tokens, read from a file and read
// again when the file changes (checked at most once a second), so that a
// token can be added or revoked without a restart. Tokens are compared by
// their SHA-256 in constant time.
type tokens struct {
	path string

	mu      sync.Mutex
	sums    [][sha256.Size]byte
	mtime   time.Time
	size    int64
	checked time.Time
}

func loadTokens(path string) (*tokens, error) {
	t := &tokens{path: path}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// reload reads the file. Blank lines and lines starting with # are skipped.
func (t *tokens) reload() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("cannot read auth.bearer_tokens_file: %w", err)
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("cannot read auth.bearer_tokens_file: %w", err)
	}
	var sums [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sums = append(sums, sha256.Sum256([]byte(line)))
	}
	if len(sums) == 0 {
		return fmt.Errorf("auth.bearer_tokens_file %s: no token in it; want one token per line", t.path)
	}
	t.sums, t.mtime, t.size = sums, st.ModTime(), st.Size()
	return nil
}

// allowed reports whether r carries an accepted token. A file that became
// unreadable or empty keeps the tokens read last.
func (t *tokens) allowed(r *http.Request, now time.Time) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.checked) >= time.Second {
		t.checked = now
		if st, err := os.Stat(t.path); err == nil && (!st.ModTime().Equal(t.mtime) || st.Size() != t.size) {
			_ = t.reload()
		}
	}
	found := 0
	for i := range t.sums {
		found |= subtle.ConstantTimeCompare(sum[:], t.sums[i][:])
	}
	return found == 1
}
