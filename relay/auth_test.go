package relay

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The token file is followed by content: emptied, it accepts no token;
// deleted or unreadable, none either, and each failed read is counted;
// written again, its tokens count at once, even when the new content has
// the old one's size and modification time.
func TestBearerTokenFileChanges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(content string) {
		t.Helper()
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("token-aaaa\n")
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Auth.BearerTokensFile = file
	r := start(t, cfg)
	body := []byte("a 1\n")
	expect := func(token string, want int) {
		t.Helper()
		if code, msg := push(t, nil, r.url, body, "Authorization", "Bearer "+token); code != want {
			t.Fatalf("token %s: %d %q; want %d", token, code, msg, want)
		}
	}
	becomes := func(what, token string, want int) {
		t.Helper()
		waitFor(t, what, 10*time.Second, func() bool {
			code, _ := push(t, nil, r.url, body, "Authorization", "Bearer "+token)
			return code == want
		})
	}
	expect("token-aaaa", http.StatusNoContent)

	write("# nobody for now\n\n")
	becomes("the token refused once the file is emptied", "token-aaaa", http.StatusUnauthorized)
	if n := r.metric(t, "procfleet_relay_tokens"); n != 0 {
		t.Fatalf("tokens with the file emptied = %v; want 0", n)
	}

	write("token-aaaa\n")
	becomes("the token accepted again", "token-aaaa", http.StatusNoContent)

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	becomes("the token refused once the file is deleted", "token-aaaa", http.StatusUnauthorized)
	waitFor(t, "the missing file counted", 10*time.Second, func() bool {
		return r.metric(t, "procfleet_relay_token_file_errors_total") >= 1
	})
	if n := r.metric(t, "procfleet_relay_tokens"); n != 0 {
		t.Fatalf("tokens with the file missing = %v; want 0", n)
	}

	// Same size, same modification time, another token.
	write("token-bbbb\n")
	if err := os.Chtimes(file, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	becomes("the new token accepted", "token-bbbb", http.StatusNoContent)
	expect("token-aaaa", http.StatusUnauthorized)
	errs := r.metric(t, "procfleet_relay_token_file_errors_total")
	write("token-aaaa\n") // same size and time as the content before
	if err := os.Chtimes(file, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	becomes("the old token accepted again", "token-aaaa", http.StatusNoContent)
	expect("token-bbbb", http.StatusUnauthorized)
	if n := r.metric(t, "procfleet_relay_token_file_errors_total"); n != errs {
		t.Fatalf("token file errors went %v -> %v while the file was readable", errs, n)
	}
}

// An empty token file at start is no error: no import is accepted until
// tokens are written to it. A missing one is.
func TestBearerTokenFileAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Auth.BearerTokensFile = filepath.Join(dir, "missing")
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("New with a missing token file succeeded")
	}
	cfg.Auth.BearerTokensFile = filepath.Join(dir, "tokens")
	if err := os.WriteFile(cfg.Auth.BearerTokensFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	if code, _ := push(t, nil, r.url, []byte("a 1\n"), "Authorization", "Bearer x"); code != http.StatusUnauthorized {
		t.Fatalf("import with an empty token file = %d; want 401", code)
	}
	if err := os.WriteFile(cfg.Auth.BearerTokensFile, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the written token accepted", 10*time.Second, func() bool {
		code, _ := push(t, nil, r.url, []byte("a 1\n"), "Authorization", "Bearer x")
		return code == http.StatusNoContent
	})
}
