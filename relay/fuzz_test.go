package relay

import (
	"bytes"
	"github.com/procfleet/procfleet/internal/testenv"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/procfleet/procfleet/prom/promtext"
)

// FuzzImport sends hostile requests through the import handler: whatever
// the body and query, the answer is 204, 400 or 413, never a crash; a 204
// stores exactly one record when the body has samples and none otherwise,
// and a refusal stores nothing; the handler agrees with promtext.Check.
func FuzzImport(f *testing.F) {
	for _, seed := range []struct {
		query string
		body  string
		gzip  bool
	}{
		{"", "a 1\n", false},
		{"extra_label=instance%3Dh", "a{b=\"c\"} 1 1700000000000\n", false},
		{"timestamp=1700000000000", "# HELP a x\na 1\n", true},
		{"", "a{b=\"\\x\"} 1\n", false},
		{"extra_label=1bad", "a 1\n", false},
		{"", "\x1f\x8b\x08\x00", true},
		{"", "", false},
	} {
		body := []byte(seed.body)
		if seed.gzip {
			body = testenv.Gzip(f, seed.body)
		}
		f.Add(seed.query, body, seed.gzip)
	}
	cfg := testConfig(f, "http://127.0.0.1:1/api/v1/import/prometheus")
	cfg.Import.MaxBodyBytes = 64 << 10
	cfg.Import.MaxDecompressedBytes = 256 << 10
	r := start(f, cfg)
	h := r.handler()
	f.Fuzz(func(t *testing.T, query string, body []byte, gzipped bool) {
		req := httptest.NewRequest(http.MethodPost, ImportPath, bytes.NewReader(body))
		req.URL.RawQuery = query // as it came on the wire, unchecked
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		before := r.WAL().Len()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		stored := r.WAL().Len() - before
		switch w.Code {
		case http.StatusNoContent:
			lim := promtext.DefaultLimits()
			lim.MaxBytes = int64(cfg.Import.MaxDecompressedBytes)
			lim.MaxLineBytes = int(cfg.Import.MaxLineBytes)
			check := promtext.Check
			if gzipped {
				check = promtext.CheckGzip
			}
			n, err := check(bytes.NewReader(body), lim)
			if err != nil {
				t.Fatalf("204 for a body promtext refuses: %v", err)
			}
			if want := min(n, 1); stored != want {
				t.Fatalf("204 with %d samples stored %d records; want %d", n, stored, want)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if stored != 0 {
				t.Fatalf("%d stored %d records; want none", w.Code, stored)
			}
			if w.Body.Len() == 0 {
				t.Fatalf("%d without a message", w.Code)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
