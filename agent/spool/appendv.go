package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"time"
)

// AppendVec is Append for a payload held in pieces: the record holds their
// concatenation, in order. The pieces are written to the segment file where
// they lie, none is first copied into a buffer of the whole record, so a
// large payload read in chunks costs no second copy in memory. Durability,
// errors and concurrency are those of Append; MaxRecordBytes bounds the
// sum of the pieces. AppendVec does not keep the pieces.
func (l *Log) AppendVec(pieces [][]byte, created time.Time) error {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	if n > MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, MaxRecordBytes)
	}
	var hdr [headerSize]byte
	putHeader(&hdr, pieces, n, created.UnixMilli())
	g, err := l.write(&hdr, pieces, int64(headerSize+n))
	if g == nil || err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.awaitLocked(g, false)
}

// putHeader fills hdr for a payload of n bytes in pieces. The checksum is
// computed here, before the write lock is taken, so that concurrent
// appends checksum in parallel.
func putHeader(hdr *[headerSize]byte, pieces [][]byte, n int, createdMs int64) {
	binary.LittleEndian.PutUint32(hdr[4:], uint32(n))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(createdMs))
	c := crc32.Update(0, castagnoli, hdr[4:])
	for _, p := range pieces {
		c = crc32.Update(c, castagnoli, p)
	}
	binary.LittleEndian.PutUint32(hdr[0:], c)
}

// smallPiece is the size under which a piece is gathered with its
// neighbours into one write (the record header and a batch's own header
// are a few bytes); larger pieces are written where they lie.
const smallPiece = 4 << 10

// writePieces writes the header and the pieces at off in f: small ones
// gathered in l.wbuf, large ones directly, in order. The caller holds wmu.
func (l *Log) writePieces(f *os.File, off int64, hdr *[headerSize]byte, pieces [][]byte) error {
	l.wbuf = append(l.wbuf[:0], hdr[:]...)
	flush := func() error {
		if len(l.wbuf) == 0 {
			return nil
		}
		_, err := f.WriteAt(l.wbuf, off)
		off += int64(len(l.wbuf))
		l.wbuf = l.wbuf[:0]
		return err
	}
	for _, p := range pieces {
		if len(p) < smallPiece && len(l.wbuf)+len(p) <= 2*smallPiece {
			l.wbuf = append(l.wbuf, p...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return flush()
}
