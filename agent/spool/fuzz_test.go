package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// FuzzRecover writes arbitrary bytes as a segment file and opens the log:
// Open must not fail or panic, and the records it delivers must be exactly
// the checksummed records at the start of the file, in order.
func FuzzRecover(f *testing.F) {
	var good []byte
	for i := range 3 {
		good = appendRecord(good, payload(i), int64(1700000000000+i))
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), make([]byte, 20)...))
	flipped := bytes.Clone(good)
	flipped[headerSize+30] ^= 1
	f.Add(flipped)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(1 << 20)
		cfg.AckInterval = time.Hour // no fsync per Ack
		l, err := Open(dir, cfg, metrics.NewSet())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		var enc []byte
		for n := 0; ; n++ {
			l.mu.Lock()
			recs, err := l.peekLocked(time.Now(), 1, 0)
			l.mu.Unlock()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(recs) == 0 {
				break
			}
			r := recs[0]
			if r.Seq != uint64(n+1) {
				t.Fatalf("record %d has seq %d", n, r.Seq)
			}
			enc = appendRecord(enc, r.Data, r.Created.UnixMilli())
			// Advance as Ack does, without fsyncing an ack file, so that
			// the fuzzer runs fast enough to minimise its finds.
			l.mu.Lock()
			err = l.advanceLocked()
			l.records--
			l.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(data, enc) {
			t.Fatalf("delivered records are not a prefix of the file")
		}
		if rec := l.Recovery(); rec.Records*headerSize > len(data) {
			t.Fatalf("Recovery() = %+v from %d bytes", rec, len(data))
		}
	})
}
