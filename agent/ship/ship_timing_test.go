package ship

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/internal/testenv"
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

// BenchmarkJoinSpooled measures reading back 256 spooled records of about
// 4 KiB and joining them into one replay request, as the relay does for
// every forwarded batch.
func BenchmarkJoinSpooled(b *testing.B) {
	recs := make([]spool.Record, 256)
	size := 0
	for i := range recs {
		var text strings.Builder
		for j := 0; text.Len() < 16<<10; j++ {
			text.WriteString(line(i*1000 + j))
		}
		bt := batch(b, text.String())
		recs[i] = spool.Record{Seq: uint64(i + 1), Data: appendRecord(nil, bt), Created: time.Now()}
		size += len(bt.Body)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		parts, err := parseRecords(recs)
		if err != nil || len(parts) != len(recs) {
			b.Fatalf("parseRecords: %d parts, %v", len(parts), err)
		}
		if j := joinBatches(parts); len(j.Body) != size {
			b.Fatalf("joined %d bytes; want %d", len(j.Body), size)
		}
	}
}
