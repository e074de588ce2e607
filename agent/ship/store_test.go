package ship

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/spool"
)

// A batch stored in chunks is the record appendRecord makes of the same
// batch with its body joined, and reads back as that batch.
func TestChunkedStore(t *testing.T) {
	sp := openSpool(t, t.TempDir(), spoolConfig())
	defer sp.Close()
	big := []byte(strings.Repeat("m 1\n", 20<<10))
	cases := []*Chunked{
		{Chunks: [][]byte{[]byte("a 1\n")}, Samples: 1, Query: "timestamp=1700000000000", Plain: true},
		{Chunks: [][]byte{big[:5], {}, big[5 : 40<<10], big[40<<10:]}, Samples: 20 << 10, Query: "extra_label=x%3D1"},
		{Chunks: nil, Samples: 0},
	}
	created := time.UnixMilli(1700000000123)
	for _, c := range cases {
		if err := c.Store(sp, created); err != nil {
			t.Fatalf("Store: %v", err)
		}
	}
	recs, err := sp.NextN(context.Background(), len(cases), 1<<30)
	if err != nil || len(recs) != len(cases) {
		t.Fatalf("NextN = %d records, %v; want %d", len(recs), err, len(cases))
	}
	for i, c := range cases {
		joined := &Batch{Body: bytes.Join(c.Chunks, nil), Samples: c.Samples, Query: c.Query, Plain: c.Plain}
		if want := appendRecord(nil, joined); !bytes.Equal(recs[i].Data, want) {
			t.Fatalf("case %d: stored %d bytes; want appendRecord's %d", i, len(recs[i].Data), len(want))
		}
		got, err := parseRecord(recs[i].Data, recs[i].Created)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Body, joined.Body) || got.Samples != c.Samples || got.Query != c.Query || got.Plain != c.Plain || !got.Created.Equal(created) {
			t.Fatalf("case %d read back as %+v", i, got)
		}
	}
	// The limit is the spool's record limit less the batch's header, so a
	// body at MaxStoredBody fits and one byte more does not.
	mib := make([]byte, 1<<20)
	q := strings.Repeat("q", 1000)
	n := MaxStoredBody(len(q))
	if n+int64(maxRecordHeader)+int64(len(q)) != spool.MaxRecordBytes {
		t.Fatalf("MaxStoredBody(%d) = %d; want the record limit less header and query", len(q), n)
	}
	over := &Chunked{Query: q}
	for left := n + 1; left > 0; left -= int64(len(mib)) {
		over.Chunks = append(over.Chunks, mib[:min(left, int64(len(mib)))])
	}
	if err := over.Store(sp, created); !errors.Is(err, spool.ErrTooLarge) {
		t.Fatalf("Store of MaxStoredBody+1 = %v; want ErrTooLarge", err)
	}
}

// BenchmarkChunkedStore stores a 4 MiB body held in 64 KiB chunks, as
// the relay does with a large import request.
func BenchmarkChunkedStore(b *testing.B) {
	c := spool.DefaultConfig()
	c.SyncInterval = 100 * time.Millisecond
	sp, err := spool.Open(b.TempDir(), c, metrics.NewSet())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sp.Close() })
	body := make([]byte, 4<<20)
	ch := &Chunked{Samples: 1000, Query: "extra_label=instance%3Dh1"}
	for off := 0; off < len(body); off += 64 << 10 {
		ch.Chunks = append(ch.Chunks, body[off:off+64<<10])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	now := time.Now()
	var n uint64
	for b.Loop() {
		if err := ch.Store(sp, now); err != nil {
			b.Fatal(err)
		}
		n++
		if err := sp.Ack(n); err != nil {
			b.Fatal(err)
		}
	}
}
