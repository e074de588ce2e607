package session

import (
	"bytes"
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusState is the latest status and what of it reached etcd.
type statusState struct {
	data      []byte // latest status; nil before the first SetStatus
	seq       uint64 // bumped by each SetStatus
	written   uint64 // seq of the last value written
	lastData  []byte // the last value written
	lastWrite time.Time
	// due is when a status set by SetStatusWithin must be written, the
	// interval notwithstanding; zero when none waits. dueSeq is its seq.
	due    time.Time
	dueSeq uint64
}

// SetStatus records data as the member's status. Run writes it, bound to
// the lease, at most once per status interval (WithStatusInterval): a
// status set sooner is written when the interval has passed, and only the
// latest one is written. A status equal to the one in etcd is not written
// again. The status is also written at each registration. SetStatus copies
// data and never blocks.
func (s *Session) SetStatus(data []byte) {
	s.setStatus(data)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// SetStatusWithin records data as the member's status like SetStatus, and
// has Run write it within d, whatever the status interval: for a change
// that readers wait for (a config revision applied or refused), while
// frequent changes (counters) stay on the interval. A status set later,
// before the write, is written in its place, as soon; a status still due
// sooner keeps its time. The write counts for the interval like any
// other. d must not be negative. SetStatusWithin copies data and never
// blocks.
func (s *Session) SetStatusWithin(data []byte, d time.Duration) {
	s.mu.Lock()
	s.setStatusLocked(data)
	if due := time.Now().Add(max(d, 0)); s.status.due.IsZero() || due.Before(s.status.due) {
		s.status.due = due
	}
	s.status.dueSeq = s.status.seq
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// SetStatusInterval changes the least time between two status writes
// made by SetStatus (WithStatusInterval) from now on: a status held back
// by the old interval is written once the new one has passed since the
// last write, sooner when the new interval is shorter. d must not be
// negative. It never blocks.
func (s *Session) SetStatusInterval(d time.Duration) {
	s.mu.Lock()
	changed := d != s.opts.statusInterval && d >= 0
	if changed {
		s.opts.statusInterval = d
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	select {
	case s.retime <- struct{}{}:
	default:
	}
}

// WriteStatus records data as the member's status like SetStatus, and
// writes it now, whatever the status interval, unless it is already in
// etcd. It returns ErrNotRegistered when the session holds no lease; the
// status is then written at the next registration. It blocks until etcd
// answers or ctx ends.
func (s *Session) WriteStatus(ctx context.Context, data []byte) error {
	s.setStatus(data)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	lease := s.info.Lease
	s.mu.Unlock()
	if lease == 0 {
		return ErrNotRegistered
	}
	return s.writeStatusLocked(ctx, lease)
}

func (s *Session) setStatus(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setStatusLocked(data)
}

// setStatusLocked records data as the latest status; the caller holds mu.
func (s *Session) setStatusLocked(data []byte) {
	s.status.data = bytes.Clone(data)
	if s.status.data == nil {
		s.status.data = []byte{}
	}
	s.status.seq++
}

// pendingStatus returns the latest status, nil if none was set.
func (s *Session) pendingStatus() ([]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.data, s.status.seq
}

// statusDelay returns how long the rate limit still holds back a pending
// status (less when it is due sooner, see SetStatusWithin); 0 when it can
// be written now or nothing is pending.
func (s *Session) statusDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.seq == s.status.written {
		return 0
	}
	at := s.status.lastWrite.Add(s.opts.statusInterval)
	if !s.status.due.IsZero() && s.status.due.Before(at) {
		at = s.status.due
	}
	return max(0, time.Until(at))
}

// statusWritten records that the status numbered seq reached etcd.
func (s *Session) statusWritten(seq uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.written = max(s.status.written, seq)
	s.status.lastData = data
	s.status.lastWrite = time.Now()
	s.clearDueLocked()
}

// clearDueLocked forgets the due time once the status it was set for, or
// a later one, is in etcd; the caller holds mu.
func (s *Session) clearDueLocked() {
	if s.status.written >= s.status.dueSeq {
		s.status.due = time.Time{}
	}
}

// writeStatus writes the pending status bound to lease.
func (s *Session) writeStatus(ctx context.Context, lease clientv3.LeaseID) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.writeStatusLocked(ctx, lease)
}

// writeStatusLocked writes the latest status unless etcd has it already.
// The caller holds writeMu.
func (s *Session) writeStatusLocked(ctx context.Context, lease clientv3.LeaseID) error {
	s.mu.Lock()
	data, seq := s.status.data, s.status.seq
	unchanged := seq == s.status.written || s.status.lastData != nil && bytes.Equal(data, s.status.lastData)
	if unchanged {
		s.status.written = seq
		s.clearDueLocked()
	}
	s.mu.Unlock()
	if unchanged {
		return nil
	}
	if _, err := s.cli.Put(ctx, s.statusKey, string(data), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("cannot write %s: %w", s.statusKey, err)
	}
	s.statusWritten(seq, data)
	return nil
}
