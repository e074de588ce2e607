package ship

import (
	"fmt"
	"time"

	"github.com/procfleet/procfleet/agent/spool"
)

// Chunked is a batch whose body is held in chunks, in order, as the relay
// reads an import request. Store writes it to a spool log without joining
// the chunks; the shipper reads it back as one Batch.
type Chunked struct {
	// Chunks hold the body, in order; empty chunks are allowed.
	Chunks [][]byte
	// Samples, Query and Plain are those of Batch.
	Samples int
	Query   string
	Plain   bool
}

// MaxStoredBody returns the most body bytes a stored batch may hold beside
// a query of queryLen bytes: what a spool record holds, less the batch's
// header.
func MaxStoredBody(queryLen int) int64 {
	return spool.MaxRecordBytes - maxRecordHeader - int64(queryLen)
}

// Store appends b to l as one record in the shipper's spool format (see
// appendRecord), created at the given time, and returns the error of
// spool.Log.AppendVec: the chunks are written to the file where they lie.
// Store does not keep b. It is safe for concurrent use as l is.
func (b *Chunked) Store(l *spool.Log, created time.Time) error {
	n := 0
	for _, c := range b.Chunks {
		n += len(c)
	}
	if int64(n) > MaxStoredBody(len(b.Query)) {
		return fmt.Errorf("%w: a body of %d bytes with a query of %d", spool.ErrTooLarge, n, len(b.Query))
	}
	pieces := make([][]byte, 1, 1+len(b.Chunks))
	pieces[0] = appendRecordHeader(make([]byte, 0, maxRecordHeader+len(b.Query)), b.Samples, b.Query, b.Plain, false)
	pieces = append(pieces, b.Chunks...)
	return l.AppendVec(pieces, created)
}
