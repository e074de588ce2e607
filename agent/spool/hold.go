package spool

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Held records. A reader that must be able to send a record again for a
// while after it was delivered (the shipper's redelivery window) holds it
// instead of acknowledging it: Hold moves the read position past the
// record, so that Next, NextN, Len, OldestAge and the metrics treat it as
// delivered, while it stays on disk, readable with ReadFrom, until Ack
// deletes it. After a restart nothing is held: records held but not
// acknowledged are delivered again (at least once, as always).
//
// The read position is rd, the oldest record not held, meaningful only
// while rd.seq is past the head; otherwise it is the head. Positions carry
// their segment and offset, so that reading there takes no scan.

// Pos is where a record lies in the log, to read it again with ReadFrom.
// The zero Pos is the oldest record there is.
type Pos struct {
	seq uint64
	seg uint64 // first seq of the segment file holding seq
	off int64  // offset of the record's header in that file
}

// Seq returns the sequence number of the record at p.
func (p Pos) Seq() uint64 { return p.seq }

// Hold marks every record up to and including r, which NextN or ReadFrom
// returned, as delivered but kept: reading goes on after it, and Len,
// OldestAge and procfleet_spool_records no longer count it, while Ack
// still has to delete it. Holding a record at or before the read position
// is a no-op. r.Data must be as it was returned.
func (l *Log) Hold(r Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if r.Pos.seq != r.Seq || r.Seq >= l.nextSeq {
		return fmt.Errorf("spool: cannot hold record %d: not a record read from this log", r.Seq)
	}
	if r.Seq < l.readSeqLocked() {
		return nil
	}
	l.rd = Pos{seq: r.Seq + 1, seg: r.Pos.seg, off: r.Pos.off + headerSize + int64(len(r.Data))}
	return nil
}

// Held returns the number of records held and not yet acknowledged. It
// does not block on I/O and keeps working after Close.
func (l *Log) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.heldLocked())
}

// ReadFrom returns up to maxRecords consecutive records starting at p, or
// at the oldest one when the record at p is acknowledged (deleted) already,
// stopping before the record that would take their payloads over maxBytes
// but returning at least one; none when there is no record there yet. It
// does not block for records, drops none for age and moves no position:
// it reads held records again. Each Data is a fresh slice owned by the
// caller.
func (l *Log) ReadFrom(p Pos, maxRecords, maxBytes int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	b := batch{
		recs:       make([]Record, 0, min(max(maxRecords, 1), 64)),
		maxRecords: max(maxRecords, 1),
		maxBytes:   maxBytes,
		now:        time.Now(),
	}
	return l.readAtLocked(&b, p)
}

// readSeqLocked returns the sequence number of the oldest record neither
// acknowledged nor held.
func (l *Log) readSeqLocked() uint64 {
	return max(l.rd.seq, l.headSeq)
}

// heldLocked counts the readable records between the head and rd.
func (l *Log) heldLocked() int64 {
	if l.rd.seq <= l.headSeq {
		return 0
	}
	var n int64
	for _, s := range l.segs {
		lo, hi := max(s.first, l.headSeq), min(s.first+s.n, l.rd.seq)
		if hi > lo {
			n += int64(hi - lo)
		}
	}
	return n
}

// locateLocked resolves p to the segment index, sequence number and
// offset of the first readable record at or after it. A p at or before the
// head resolves to the head. ok is false when no record is there yet.
func (l *Log) locateLocked(p Pos) (idx int, seq uint64, off int64, ok bool, err error) {
	if p.seq <= l.headSeq {
		ok, err := l.headLocked()
		return 0, l.headSeq, l.headOff, ok, err
	}
	idx = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first >= p.seg })
	if idx == len(l.segs) || l.segs[idx].first != p.seg {
		// Segments past the head are deleted only with the head.
		return 0, 0, 0, false, fmt.Errorf("spool: record %d: segment %s is gone", p.seq, segmentName(p.seg))
	}
	seq, off = p.seq, p.off
	for s := l.segs[idx]; seq >= s.first+s.n; s = l.segs[idx] {
		if idx == len(l.segs)-1 {
			return idx, seq, off, false, nil // the records to come go here
		}
		idx++
		seq, off = max(seq, l.segs[idx].first), 0
	}
	return idx, seq, off, true, nil
}

// readAtLocked reads into b the records from p on, across segments.
func (l *Log) readAtLocked(b *batch, p Pos) ([]Record, error) {
	idx, seq, off, ok, err := l.locateLocked(p)
	if !ok || err != nil {
		return nil, err
	}
	f, done, err := l.segmentFile(idx)
	if err != nil {
		return nil, err
	}
	err = b.read(f, l.segs[idx], seq, off, nil)
	done()
	for _, s := range l.segs[idx+1:] {
		if err != nil || b.full {
			break
		}
		if s.n > 0 {
			err = b.readFile(s)
		}
	}
	if len(b.recs) > 0 {
		err = nil // the record that failed is not the first yet
	}
	return b.recs, err
}

// segmentFile returns a read handle of segs[idx] and the function that
// releases it: the head's handle for the first segment, a fresh one for
// the others.
func (l *Log) segmentFile(idx int) (*os.File, func(), error) {
	if idx == 0 && l.reader != nil {
		return l.reader, func() {}, nil
	}
	f, err := os.Open(l.segs[idx].path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open spool segment %s: %w", l.segs[idx].path, err)
	}
	return f, func() { f.Close() }, nil
}

// headerAtLocked reads the header of the record at the resolved position.
func (l *Log) headerAtLocked(idx int, off int64) (header, error) {
	f, done, err := l.segmentFile(idx)
	if err != nil {
		return header{}, err
	}
	defer done()
	var hb [headerSize]byte
	if _, err := f.ReadAt(hb[:], off); err != nil {
		return header{}, fmt.Errorf("cannot read spool segment %s: %w", l.segs[idx].path, err)
	}
	return parseHeader(hb[:]), nil
}

// peekHeldLocked is peekLocked while records are held: the batch starts at
// rd. Records over MaxAge met there are held at once and counted as
// dropped; Ack deletes them with the records around them.
func (l *Log) peekHeldLocked(now time.Time, maxRecords, maxBytes int) ([]Record, error) {
	for l.cfg.MaxAge > 0 && l.rd.seq > l.headSeq {
		idx, seq, off, ok, err := l.locateLocked(l.rd)
		if !ok || err != nil {
			return nil, err
		}
		h, err := l.headerAtLocked(idx, off)
		if err != nil {
			return nil, err
		}
		if !expired(h, now, l.cfg.MaxAge) {
			break
		}
		l.droppedAge.Inc()
		l.rd = Pos{seq: seq + 1, seg: l.segs[idx].first, off: off + headerSize + int64(h.length)}
	}
	if l.rd.seq <= l.headSeq {
		return l.peekLocked(now, maxRecords, maxBytes)
	}
	b := batch{
		recs:       make([]Record, 0, min(max(maxRecords, 1), 64)),
		maxRecords: max(maxRecords, 1),
		maxBytes:   maxBytes,
		now:        now,
		maxAge:     l.cfg.MaxAge,
	}
	return l.readAtLocked(&b, l.rd)
}

// oldestHeldAgeLocked is OldestAge while records are held: the age of the
// record at rd, 0 when there is none.
func (l *Log) oldestHeldAgeLocked() time.Duration {
	idx, _, off, ok, err := l.locateLocked(l.rd)
	if !ok || err != nil {
		return 0
	}
	h, err := l.headerAtLocked(idx, off)
	if err != nil {
		return 0
	}
	return time.Since(time.UnixMilli(h.createdMs))
}

// allHeldLocked reports whether every record of s is held.
func (l *Log) allHeldLocked(s *segment) bool {
	return l.rd.seq > l.headSeq && l.rd.seq >= s.first+s.n
}

// releaseSegmentLocked deletes segs[0], whose records are all held, as if
// they were acknowledged: held records give their space to new ones.
func (l *Log) releaseSegmentLocked() error {
	s := l.segs[0]
	if n := int64(s.first + s.n - min(max(l.headSeq, s.first), s.first+s.n)); n > 0 {
		l.records -= n
	}
	l.acked = max(l.acked, s.first+s.n-1)
	return l.dropSegmentLocked()
}

// releaseHeld deletes the segments whose records are all held, the active
// one too (after starting a new one), and reports whether it deleted any.
// The caller holds wmu.
func (l *Log) releaseHeld() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	freed := false
	for len(l.segs) > 0 && l.allHeldLocked(l.segs[0]) {
		if len(l.segs) == 1 {
			if l.segs[0].size == 0 || l.rotateLocked() != nil {
				break
			}
			continue
		}
		if l.releaseSegmentLocked() != nil {
			break
		}
		freed = true
	}
	return freed
}

// undeliveredIn counts the records of s that are neither acknowledged
// nor held, for a segment dropped to make room.
func (l *Log) undeliveredIn(s *segment) int64 {
	return int64(s.first + s.n - min(max(l.readSeqLocked(), s.first), s.first+s.n))
}
