package ship

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Spool records hold one batch each:
//
//	byte 0    format version (1)
//	byte 1    flags: bit 0 set for a plain (not gzip) body, bit 1 for a
//	          body whose lines carry their own labels (Batch.OwnLabels),
//	          bit 2 for a zstd body (Batch.Zstd)
//	uvarint   samples
//	uvarint   length of the query, then the query (URL-encoded arguments)
//	rest      the body
//
// The spool's own record header carries the checksum and creation time.
const (
	recordVersion = 1
	flagPlain     = 1 << 0
	flagOwnLabels = 1 << 1
	flagZstd      = 1 << 2
)

// errRecord marks a spool record this version cannot read.
var errRecord = errors.New("unreadable spool record")

// maxRecordHeader bounds what a record holds besides its query and body.
const maxRecordHeader = 2 + 2*binary.MaxVarintLen64

// appendRecord appends the spool record of b to dst and returns it. The
// shipper spools batches with it; other packages store batches with
// Chunked.Store, which writes the same format.
func appendRecord(dst []byte, b *Batch) []byte {
	dst = appendRecordHeader(dst, b.Samples, b.Query, b.Plain, b.OwnLabels)
	if b.Zstd {
		dst[1] |= flagZstd
	}
	return append(dst, b.Body...)
}

// appendRecordHeader appends everything of a record before its body.
func appendRecordHeader(dst []byte, samples int, query string, plain, ownLabels bool) []byte {
	var flags byte
	if plain {
		flags |= flagPlain
	}
	if ownLabels {
		flags |= flagOwnLabels
	}
	dst = append(dst, recordVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(max(samples, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(query)))
	return append(dst, query...)
}

// parseRecord decodes a spool record made by appendRecord. The batch's
// body aliases data.
func parseRecord(data []byte, created time.Time) (*Batch, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errRecord, len(data))
	}
	if data[0] != recordVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", errRecord, data[0], recordVersion)
	}
	if data[1]&^(flagPlain|flagOwnLabels|flagZstd) != 0 || data[1]&flagPlain != 0 && data[1]&flagZstd != 0 {
		return nil, fmt.Errorf("%w: flags %#x", errRecord, data[1])
	}
	b := &Batch{Plain: data[1]&flagPlain != 0, OwnLabels: data[1]&flagOwnLabels != 0, Zstd: data[1]&flagZstd != 0, Created: created}
	rest := data[2:]
	samples, n := binary.Uvarint(rest)
	if n <= 0 || samples > 1<<40 {
		return nil, fmt.Errorf("%w: bad sample count", errRecord)
	}
	rest = rest[n:]
	ql, n := binary.Uvarint(rest)
	if n <= 0 || ql > uint64(len(rest)-n) {
		return nil, fmt.Errorf("%w: bad query length", errRecord)
	}
	rest = rest[n:]
	b.Samples = int(samples)
	b.Query = string(rest[:ql])
	b.Body = rest[ql:]
	return b, nil
}
