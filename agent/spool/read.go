package spool

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

const ackName = "ack"

// Next returns the oldest unacknowledged record, blocking until there is
// one, ctx ends (returning ctx.Err()) or the log is closed (ErrClosed).
// Calling Next again without Ack returns the same record, so a failed
// delivery is retried by calling Next again. Records older than MaxAge are
// dropped and counted on the way. Data is a fresh slice owned by the caller.
func (l *Log) Next(ctx context.Context) (Record, error) {
	recs, err := l.NextN(ctx, 1, 0)
	if err != nil {
		return Record{}, err
	}
	return recs[0], nil
}

// NextN is Next for a batch: it returns up to maxRecords consecutive
// records starting at the oldest one neither acknowledged nor held (see
// Hold), stopping before the
// record that would take the total of their payloads over maxBytes, but
// always at least one, however large. maxRecords below 1 counts as 1, and
// maxBytes 0 or below sets no byte limit. It blocks, drops records over
// MaxAge and fails as Next does. It does not move the head: Ack with the
// Seq of the last record acknowledges the whole batch, and calling NextN
// again without Ack returns the same records first. Each Data is a fresh
// slice owned by the caller. Seqs increase by one within a segment but
// may skip numbers between segments, where recovery cut damaged records.
//
// A batch reads ahead across segment files. It stops before a record over
// MaxAge, which is dropped once it is the oldest, and before a record that
// cannot be read (the error comes when that record is the oldest). It never
// holds records that recovery found behind corruption, nor records whose
// Append still waits for its fsync. Records are read while holding the lock
// that Ack and, briefly, Append take, so a batch of many megabytes delays
// them by its read time.
func (l *Log) NextN(ctx context.Context, maxRecords, maxBytes int) ([]Record, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		recs, err := l.peekLocked(time.Now(), maxRecords, maxBytes)
		wait := l.notify
		l.mu.Unlock()
		if len(recs) > 0 || err != nil {
			return recs, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
	}
}

// Ack marks every record up to and including seq as delivered. Segments
// whose records are all delivered are deleted, except the active one. The
// position is persisted at most every AckInterval (see Config). Acking a
// seq that was already acknowledged is a no-op; a seq not yet appended acks
// everything there is.
func (l *Log) Ack(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for l.headSeq <= seq {
		ok, err := l.headLocked()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := l.advanceLocked(); err != nil {
			return err
		}
		l.records--
	}
	l.acked = max(l.acked, min(seq, l.nextSeq-1))
	if l.cfg.AckInterval == 0 || time.Since(l.ackAt) >= l.cfg.AckInterval {
		return l.persistAckLocked()
	}
	return nil
}

// peekLocked returns the batch NextN describes, or none when there is no
// record, dropping records over MaxAge at the head first.
func (l *Log) peekLocked(now time.Time, maxRecords, maxBytes int) ([]Record, error) {
	for {
		ok, err := l.headLocked()
		if !ok || err != nil {
			return nil, err
		}
		if !expired(l.head, now, l.cfg.MaxAge) {
			break
		}
		if l.headSeq >= l.rd.seq { // a held record was delivered
			l.droppedAge.Inc()
		}
		l.acked = max(l.acked, l.headSeq)
		if err := l.advanceLocked(); err != nil {
			return nil, err
		}
		l.records--
	}
	if l.rd.seq > l.headSeq {
		return l.peekHeldLocked(now, maxRecords, maxBytes)
	}
	b := batch{
		recs:       make([]Record, 0, min(max(maxRecords, 1), 64)),
		maxRecords: max(maxRecords, 1),
		maxBytes:   maxBytes,
		now:        now,
		maxAge:     l.cfg.MaxAge,
	}
	// The head record's header is at hand; the others are read as they come.
	err := b.read(l.reader, l.segs[0], l.headSeq, l.headOff, &l.head)
	for _, s := range l.segs[1:] {
		if err != nil || b.full {
			break
		}
		if s.n > 0 {
			err = b.readFile(s)
		}
	}
	if len(b.recs) > 0 {
		err = nil // the record that failed is not the oldest yet
	}
	return b.recs, err
}

// expired reports whether the record with header h is over maxAge at now.
func expired(h header, now time.Time, maxAge time.Duration) bool {
	return maxAge > 0 && now.Sub(time.UnixMilli(h.createdMs)) > maxAge
}

// batch collects the records of one NextN.
type batch struct {
	recs       []Record
	bytes      int
	maxRecords int
	maxBytes   int
	now        time.Time
	maxAge     time.Duration
	full       bool // a limit was reached
}

// readFile reads records of segment s, which is not the head segment, from
// its start.
func (b *batch) readFile(s *segment) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot open spool segment %s: %w", s.path, err)
	}
	defer f.Close()
	return b.read(f, s, s.first, 0, nil)
}

// read appends the readable records of s from seq at offset off, reading
// from f, until a limit is reached. first is the header at off when known.
func (b *batch) read(f *os.File, s *segment, seq uint64, off int64, first *header) error {
	var hb [headerSize]byte
	for ; seq < s.first+s.n; seq++ {
		if len(b.recs) == b.maxRecords {
			b.full = true
			return nil
		}
		var h header
		if first != nil {
			h, first = *first, nil
		} else {
			if _, err := f.ReadAt(hb[:], off); err != nil {
				return fmt.Errorf("cannot read spool segment %s: %w", s.path, err)
			}
			h = parseHeader(hb[:])
		}
		n := int(h.length)
		if len(b.recs) > 0 && (expired(h, b.now, b.maxAge) || b.maxBytes > 0 && b.bytes+n > b.maxBytes) {
			b.full = true
			return nil
		}
		data := make([]byte, n)
		if _, err := f.ReadAt(data, off+headerSize); err != nil {
			return fmt.Errorf("cannot read spool segment %s: %w", s.path, err)
		}
		b.recs = append(b.recs, Record{Seq: seq, Data: data, Created: time.UnixMilli(h.createdMs),
			Pos: Pos{seq: seq, seg: s.first, off: off}})
		b.bytes += n
		off += headerSize + int64(n)
	}
	return nil
}

// headLocked moves the head to the segment holding the oldest
// unacknowledged record, deleting exhausted segments on the way, and reads
// its header. It returns false when there is no such record.
func (l *Log) headLocked() (bool, error) {
	for s := l.segs[0]; l.headSeq >= s.first+s.n; s = l.segs[0] {
		if len(l.segs) == 1 {
			return false, nil
		}
		if err := l.dropSegmentLocked(); err != nil {
			return false, err
		}
	}
	if l.headOK {
		return true, nil
	}
	if l.reader == nil {
		f, err := os.Open(l.segs[0].path)
		if err != nil {
			return false, fmt.Errorf("cannot open spool segment %s: %w", l.segs[0].path, err)
		}
		l.reader = f
	}
	var b [headerSize]byte
	if _, err := l.reader.ReadAt(b[:], l.headOff); err != nil {
		return false, fmt.Errorf("cannot read spool segment %s: %w", l.segs[0].path, err)
	}
	l.head, l.headOK = parseHeader(b[:]), true
	return true, nil
}

// advanceLocked moves the head past the record whose header headLocked
// read, deleting its segment when that was the segment's last record and
// the segment is not the active one. The caller adjusts records.
func (l *Log) advanceLocked() error {
	l.headOff += headerSize + int64(l.head.length)
	l.headSeq++
	l.headOK = false
	if s := l.segs[0]; l.headSeq >= s.first+s.n && len(l.segs) > 1 {
		return l.dropSegmentLocked()
	}
	return nil
}

// dropSegmentLocked deletes segs[0], which is not the active segment, and
// moves the head to the start of the next one. Unacknowledged records in it
// are the caller's to count.
func (l *Log) dropSegmentLocked() error {
	s := l.segs[0]
	if l.reader != nil {
		l.reader.Close()
		l.reader = nil
	}
	if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot delete spool segment %s: %w", s.path, err)
	}
	l.bytes -= s.size
	l.segs = l.segs[1:]
	l.headSeq, l.headOff, l.headOK = max(l.headSeq, l.segs[0].first), 0, false
	return nil
}

// skipAckedLocked moves the head past records acked before a restart;
// recover did not count them in records.
func (l *Log) skipAckedLocked() error {
	for l.headSeq <= l.acked {
		ok, err := l.headLocked()
		if !ok || err != nil {
			return err
		}
		if err := l.advanceLocked(); err != nil {
			return err
		}
	}
	return nil
}

// persistAckLocked writes the acked position to the ack file atomically.
func (l *Log) persistAckLocked() error {
	if l.acked == l.ackPersisted {
		return nil
	}
	b := binary.LittleEndian.AppendUint64(nil, l.acked)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	path := filepath.Join(l.dir, ackName)
	if err := writeFileSync(path+".tmp", b); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("cannot rename spool ack file: %w", err)
	}
	l.ackPersisted, l.ackAt = l.acked, time.Now()
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("cannot create spool ack file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("cannot write spool ack file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync spool ack file %s: %w", path, err)
	}
	return f.Close()
}

// readAck returns the persisted acked position; a missing or damaged file
// reads as 0, which only causes redelivery.
func readAck(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}
