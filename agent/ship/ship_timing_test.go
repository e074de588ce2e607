package ship

import (
	"context"
	"github.com/procfleet/procfleet/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkAttempt measures one send of a 64 KiB batch to a local server
// that discards the body: the shipper's own cost per request plus loopback
// HTTP.
func BenchmarkAttempt(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	s := newShipper(b, testConfig(srv.URL+"/api/v1/import/prometheus"), Deps{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(s.closeIdle)
	var lines strings.Builder
	for i := 0; lines.Len() < 1<<20; i++ {
		lines.WriteString(line(i))
	}
	batch := &Batch{Body: testenv.Gzip(b, lines.String())}
	batch.Body = batch.Body[:min(len(batch.Body), 64<<10)] // the server does not decode
	ep := s.eps[0]
	ctx := context.Background()
	b.SetBytes(int64(len(batch.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if r := s.attempt(ctx, ep, batch); r.outcome != delivered {
			b.Fatalf("attempt: %v", r.err)
		}
	}
}
