package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// tokenCheckInterval is how often the token file is read again.
const tokenCheckInterval = time.Second

// tokens is the set of accepted bearer tokens, read from a file at start
// and, while the relay runs, every tokenCheckInterval: a token is added or
// revoked without a restart. The file is compared by content, so a
// rewrite that keeps its size and time is seen too. An empty file (or one
// of comments) accepts no token; a file that is missing or cannot be read
// accepts none either until it can be read again, and each failed read is
// logged and counted. Tokens are compared by their SHA-256 in constant
// time. allowed is safe for concurrent use; watch runs in one goroutine.
type tokens struct {
	path   string
	log    *slog.Logger
	errors *metrics.Counter // procfleet_relay_token_file_errors_total

	sums atomic.Pointer[[][sha256.Size]byte]

	// Owned by the goroutine that calls load.
	content [sha256.Size]byte // hash of the file last read
	failing bool              // the last read failed
}

// loadTokens reads the file at path; a file that cannot be read is an
// error at start. set receives the token metrics.
func loadTokens(path string, log *slog.Logger, set *metrics.Set) (*tokens, error) {
	t := &tokens{path: path, log: log, errors: set.NewCounter("procfleet_relay_token_file_errors_total")}
	set.NewGauge("procfleet_relay_tokens", func() float64 { return float64(len(*t.sums.Load())) })
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read auth.bearer_tokens_file: %w", err)
	}
	t.apply(data)
	return t, nil
}

// apply takes the tokens of data, the file's content.
func (t *tokens) apply(data []byte) {
	var sums [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sums = append(sums, sha256.Sum256([]byte(line)))
	}
	t.sums.Store(&sums)
	t.content = sha256.Sum256(data)
	if len(sums) == 0 {
		t.log.Warn("auth.bearer_tokens_file holds no token: every import gets 401", "file", t.path)
	}
}

// reload reads the file again and applies it when its content changed.
func (t *tokens) reload() {
	data, err := os.ReadFile(t.path)
	if err != nil {
		t.errors.Inc()
		t.sums.Store(&[][sha256.Size]byte{})
		t.content = [sha256.Size]byte{}
		if !t.failing {
			t.log.Error("cannot read auth.bearer_tokens_file: every import gets 401 until it can be read", "file", t.path, "err", err)
		}
		t.failing = true
		return
	}
	if t.failing {
		t.log.Info("auth.bearer_tokens_file can be read again", "file", t.path)
		t.failing = false
	}
	if sha256.Sum256(data) == t.content {
		return
	}
	t.apply(data)
	t.log.Info("auth.bearer_tokens_file changed", "file", t.path, "tokens", len(*t.sums.Load()))
}

// watch reloads the file every interval until ctx ends.
func (t *tokens) watch(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.reload()
		}
	}
}

// allowed reports whether r carries an accepted token.
func (t *tokens) allowed(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := 0
	for _, s := range *t.sums.Load() {
		found |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return found == 1
}
