package spool

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Append adds a record with payload data, created at the given time, and
// returns once it is stored under the sync policy (see Durability in the
// package documentation). Append does not keep data.
//
// With SyncInterval 0 Append returns nil only once an fsync that started
// after the record was written has succeeded, and the record is then
// readable. The record writes of concurrent Appends are serialised, their
// fsyncs are shared: Appends that wait together are covered by one fsync,
// run by the first of them without holding a lock, so Next, Ack and new
// writes go on meanwhile; a record written while an fsync runs waits for
// the next one. Records become readable in sequence order. When an fsync
// fails, every Append it covered and every Append written while it ran
// returns the error, and none of those records is ever readable: the
// active segment is truncated back to its last durable record before any
// other record is written, their sequence numbers are given again, and the
// log stays usable. (After a failed fsync the device's state is unknown: a
// machine crash before the next successful fsync, or a failed truncation,
// which seals the segment instead, may bring such a record back on a later
// Open.)
//
// With SyncInterval above 0 Append returns, and the record is readable,
// once it is written to the file; a failed interval fsync is returned by
// the next Append.
//
// Append returns ErrFull when the record does not fit under MaxBytes with
// the Refuse policy, ErrTooLarge for a payload over MaxRecordBytes, ErrClosed
// after Close, and a "cannot write/sync/create spool segment" error when the
// disk fails; the log then stays usable for reading, and nothing of the
// failed record is delivered. Starting a new segment, once per
// SegmentBytes, fsyncs the previous one first: other Appends wait for it,
// and with SyncInterval above 0 so do Next and Ack.
func (l *Log) Append(data []byte, created time.Time) error {
	return l.AppendVec([][]byte{data}, created)
}

// write writes one record, its header and payload pieces of size bytes in
// all, to the active segment. With SyncInterval 0 it returns the group
// whose fsync the record waits for; otherwise the record is readable on
// return.
func (l *Log) write(hdr *[headerSize]byte, pieces [][]byte, size int64) (*syncGroup, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.syncErr; err != nil {
		l.syncErr = nil
		return nil, err
	}
	var s *segment
	var off int64
	var seq uint64
	for retried := false; ; retried = true {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		l.rollbackLocked()
		err := l.makeRoomLocked(size)
		f := l.active
		s, off, seq = l.segs[len(l.segs)-1], l.segs[len(l.segs)-1].size, l.wseq
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
		err = l.writePieces(f, off, hdr, pieces)
		if err == nil {
			break
		}
		_ = f.Truncate(off) // best effort; the next write goes to off anyway
		// A full disk takes back the space of held records first.
		if !retried && errors.Is(err, syscall.ENOSPC) && l.releaseHeld() {
			continue
		}
		return nil, fmt.Errorf("cannot write spool segment %s: %w", s.path, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	s.size = off + size
	l.bytes += size
	l.wseq = seq + 1
	if l.cfg.SyncInterval == 0 {
		return l.open, nil
	}
	l.publishLocked(l.wseq, s.size)
	if !l.dirty {
		l.dirty = true
		if l.timer == nil {
			l.timer = time.AfterFunc(l.cfg.SyncInterval, l.syncTick)
		} else {
			l.timer.Reset(l.cfg.SyncInterval)
		}
	}
	return nil, nil
}

// makeRoomLocked makes the active segment ready for a record of size
// bytes: it applies MaxBytes and starts a new segment when the active one
// is full. The caller holds wmu and mu.
func (l *Log) makeRoomLocked(size int64) error {
	if l.cfg.MaxBytes > 0 {
		for l.bytes+size > l.cfg.MaxBytes {
			if err := l.reclaimLocked(); err != nil {
				return err
			}
		}
	}
	if l.segs[len(l.segs)-1].size >= l.cfg.SegmentBytes || l.sealed {
		return l.rotateLocked()
	}
	return nil
}

// reclaimLocked frees one segment's worth of space or returns ErrFull.
func (l *Log) reclaimLocked() error {
	active := l.segs[len(l.segs)-1]
	switch {
	case len(l.segs) == 1 && active.size > 0 && l.readSeqLocked() >= active.first+active.n:
		// Everything readable is acknowledged (or held) but the active
		// segment is kept. Rotation makes records awaiting an fsync
		// readable first, so that it deletes the segment only when they
		// are none.
		return l.rotateLocked()
	case len(l.segs) > 1 && l.allHeldLocked(l.segs[0]):
		return l.releaseSegmentLocked() // delivered: new records go first
	case l.cfg.Full == Refuse:
		return ErrFull
	case len(l.segs) > 1:
		s := l.segs[0]
		if lost := int64(s.first + s.n - max(l.headSeq, s.first)); lost > 0 {
			l.droppedFull.Add(int(l.undeliveredIn(s))) // held ones were delivered
			l.records -= lost
			l.acked = max(l.acked, s.first+s.n-1)
		}
		return l.dropSegmentLocked()
	case active.size > 0:
		return l.rotateLocked()
	}
	return fmt.Errorf("%w: MaxBytes %d cannot take a record of %d bytes", ErrFull, l.cfg.MaxBytes, headerSize)
}

// rotateLocked seals the active segment and starts a new one, deleting the
// old one when all its records are acknowledged. Every record written to
// the old segment is made durable and readable first (or rolled back), so
// that only the active segment ever holds records awaiting an fsync. The
// caller holds wmu and mu; mu is released while waiting for an fsync.
func (l *Log) rotateLocked() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	old := l.segs[len(l.segs)-1]
	if err := l.createSegment(); err != nil {
		return err
	}
	if l.segs[0] == old && l.headSeq >= old.first+old.n {
		return l.dropSegmentLocked()
	}
	return nil
}

// syncTick fsyncs the active segment SyncInterval after the first unsynced
// append. An error is kept for the next Append.
func (l *Log) syncTick() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	closed, dirty := l.closed, l.dirty
	l.dirty = false
	l.mu.Unlock()
	if closed || !dirty {
		return
	}
	if err := l.fsync(l.active); err != nil {
		l.syncErr = fmt.Errorf("cannot sync spool segment: %w", err)
	}
}
