package spool

import (
	"fmt"
	"time"
)

// Append adds a record with payload data, created at the given time, and
// returns once it is written under the sync policy: fsynced when
// SyncInterval is 0, otherwise written to the file and fsynced within
// SyncInterval. It returns ErrFull when the record does not fit under
// MaxBytes with the Refuse policy, ErrTooLarge for a payload over
// MaxRecordBytes, and a "cannot write/sync/create spool segment" error when
// the disk fails; the log then stays usable for reading, and nothing of the
// failed record is delivered. Append does not keep data. Appends are
// serialised; a blocked fsync blocks other appends but not Next or Ack.
func (l *Log) Append(data []byte, created time.Time) error {
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxRecordBytes)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.syncErr; err != nil {
		l.syncErr = nil
		return err
	}
	size := int64(headerSize + len(data))
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	err := l.makeRoomLocked(size)
	s, f := l.segs[len(l.segs)-1], l.active
	off, seq := s.end, l.nextSeq
	l.mu.Unlock()
	if err != nil {
		return err
	}

	l.wbuf = appendRecord(l.wbuf[:0], data, created.UnixMilli())
	if _, err := f.WriteAt(l.wbuf, off); err != nil {
		_ = f.Truncate(off) // best effort; the next write goes to off anyway
		return fmt.Errorf("cannot write spool segment %s: %w", s.path, err)
	}
	if l.cfg.SyncInterval == 0 {
		if err := f.Sync(); err != nil {
			_ = f.Truncate(off)
			return fmt.Errorf("cannot sync spool segment %s: %w", s.path, err)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	s.n++
	s.end += size
	l.bytes += s.end - s.size
	s.size = s.end
	l.nextSeq = seq + 1
	l.records++
	close(l.notify)
	l.notify = make(chan struct{})
	if l.cfg.SyncInterval > 0 && !l.dirty {
		l.dirty = true
		if l.timer == nil {
			l.timer = time.AfterFunc(l.cfg.SyncInterval, l.syncTick)
		} else {
			l.timer.Reset(l.cfg.SyncInterval)
		}
	}
	return nil
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
	if l.segs[len(l.segs)-1].end >= l.cfg.SegmentBytes || l.sealed {
		return l.rotateLocked()
	}
	return nil
}

// reclaimLocked frees one segment's worth of space or returns ErrFull.
func (l *Log) reclaimLocked() error {
	active := l.segs[len(l.segs)-1]
	switch {
	case len(l.segs) == 1 && active.end > 0 && l.headSeq >= active.first+active.n:
		// Everything is acknowledged but the active segment is kept.
		return l.rotateLocked()
	case l.cfg.Full == Refuse:
		return ErrFull
	case len(l.segs) > 1:
		s := l.segs[0]
		if lost := int64(s.first + s.n - max(l.headSeq, s.first)); lost > 0 {
			l.droppedFull.Add(int(lost))
			l.records -= lost
			l.acked = max(l.acked, s.first+s.n-1)
		}
		return l.dropSegmentLocked()
	case active.end > 0:
		return l.rotateLocked()
	}
	return fmt.Errorf("%w: MaxBytes %d cannot take a record of %d bytes", ErrFull, l.cfg.MaxBytes, headerSize)
}

// rotateLocked seals the active segment and starts a new one, deleting the
// old one when all its records are acknowledged. The caller holds wmu and
// mu.
func (l *Log) rotateLocked() error {
	old := l.segs[len(l.segs)-1]
	if l.dirty {
		if err := l.active.Sync(); err != nil {
			return fmt.Errorf("cannot sync spool segment %s: %w", old.path, err)
		}
		l.dirty = false
	}
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
	if err := l.active.Sync(); err != nil {
		l.syncErr = fmt.Errorf("cannot sync spool segment: %w", err)
	}
}
