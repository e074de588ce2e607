package ship

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestOwnLabels checks that a batch whose lines carry their own labels (a
// scraper's) goes without Deps.Query, whose extra_label would override
// them in VictoriaMetrics, but with the upstream's own query and its
// Query; others go as before. Spooled, it keeps the mark and is never
// merged with batches without it.
func TestOwnLabels(t *testing.T) {
	type req struct{ query, body string }
	var mu sync.Mutex
	var got []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, req{r.URL.RawQuery, string(b)})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	for _, b := range []*Batch{
		{Body: []byte("host 1\n"), Plain: true},
		{Body: []byte("scraped{job=\"a\"} 2\n"), Plain: true, OwnLabels: true},
		{Body: []byte("scraped{job=\"b\"} 3\n"), Plain: true, OwnLabels: true, Query: "timestamp=5"},
		{Body: []byte("host 4\n"), Plain: true},
	} {
		if err := sp.Append(appendRecord(nil, b), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	extra := url.Values{"extra_label": {"instance=h", "job=procfleet"}}
	s := newShipper(t, testConfig(srv.URL+"/api/v1/import/prometheus?up=1"), Deps{Spool: sp, SpoolBatchBytes: 1 << 20, Query: extra})
	stop := run(t, s)
	waitFor(t, "the spool replayed", 5*time.Second, func() bool { return sp.Len() == 0 })
	s.Enqueue(&Batch{Body: []byte("scraped{job=\"c\"} 6\n"), Plain: true, OwnLabels: true})
	s.Enqueue(&Batch{Body: []byte("host 7\n"), Plain: true})
	waitFor(t, "the queue sent", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 6
	})
	_ = stop()
	labeled := "extra_label=instance%3Dh&extra_label=job%3Dprocfleet&up=1"
	want := []req{
		{labeled, "host 1\n"},
		{"up=1", "scraped{job=\"a\"} 2\n"},
		{"up=1&timestamp=5", "scraped{job=\"b\"} 3\n"},
		{labeled, "host 4\n"},
		{"up=1", "scraped{job=\"c\"} 6\n"},
		{labeled, "host 7\n"},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("requests = %q; want %q", got, want)
	}
	rec, err := parseRecord(appendRecord(nil, &Batch{Body: []byte("x"), OwnLabels: true}), time.Now())
	if err != nil || !rec.OwnLabels {
		t.Fatalf("record round trip: %+v, %v", rec, err)
	}
}
