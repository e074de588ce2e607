package spool

import "fmt"

// Group commit, for SyncInterval 0. An Append writes its record under wmu
// and joins the open group, then waits (awaitLocked). The first waiter to
// find no fsync running leads: it takes the open group as inflight, starts
// a new open group for records written from then on, and fsyncs the active
// file with no lock held. On success the inflight records become readable
// (publishLocked); on failure every record written since the last durable
// one is truncated away and fails (rollbackLocked). Rotation and Close wait
// while an fsync runs, so the file it syncs stays open and active, and they
// fsync what is left themselves (flushLocked). No leader starts while a
// failure awaits its rollback, so a later fsync, which may succeed although
// the data of the failed one is lost, never makes a failed record readable.
// Lock order: wmu, then mu.

// syncGroup is the records written between the starts of two fsyncs; they
// become durable, or fail, together. Its fields are guarded by mu.
type syncGroup struct {
	done bool
	err  error
}

// awaitLocked waits until g is resolved and returns its error, leading an
// fsync when none runs. The caller holds mu, and wmu when haveWMU: such a
// caller rolls back a failure itself, since the failed leader waits for
// wmu to do it.
func (l *Log) awaitLocked(g *syncGroup, haveWMU bool) error {
	for !g.done {
		switch {
		case l.failed != nil && haveWMU:
			l.rollbackLocked()
		case l.syncing || l.failed != nil:
			l.synced.Wait()
		default:
			l.leadLocked(haveWMU)
		}
	}
	return g.err
}

// leadLocked fsyncs the active file for every record written so far,
// releasing mu during the fsync. The caller holds mu, and wmu when haveWMU.
func (l *Log) leadLocked(haveWMU bool) {
	g, s, f := l.open, l.segs[len(l.segs)-1], l.active
	upto, end := l.wseq, s.size
	l.open, l.inflight, l.syncing = &syncGroup{}, g, true
	l.mu.Unlock()
	err := l.fsync(f)
	l.mu.Lock()
	l.syncing = false
	defer l.synced.Broadcast()
	if err == nil {
		l.inflight = nil
		l.publishLocked(upto, end)
		g.done = true
		return
	}
	l.failed = fmt.Errorf("cannot sync spool segment %s: %w", s.path, err)
	if haveWMU {
		l.rollbackLocked()
		return
	}
	// A rotation or Close that holds wmu and waits for this fsync rolls
	// back in our place.
	l.synced.Broadcast()
	l.mu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	l.rollbackLocked()
}

// rollbackLocked undoes a failed fsync, if there is one: it truncates the
// active segment back to its last durable record and fails every record
// written after it, those of the failed fsync and those written while it
// ran, with its error. Their sequence numbers are given again, which no
// reader can tell, since none of them was readable. The caller holds wmu
// and mu.
func (l *Log) rollbackLocked() {
	err := l.failed
	if err == nil {
		return
	}
	l.failed = nil
	s := l.segs[len(l.segs)-1]
	if l.active.Truncate(s.end) == nil {
		l.bytes -= s.size - s.end
		s.size = s.end
		l.wseq = l.nextSeq
	} else {
		// The failed records stay in the file, where Open would count
		// them: write nothing after them and never reuse their numbers.
		l.sealed = true
		l.nextSeq = l.wseq
	}
	for _, g := range [...]*syncGroup{l.inflight, l.open} {
		if g != nil {
			g.done, g.err = true, err
		}
	}
	l.inflight, l.open = nil, &syncGroup{}
	l.synced.Broadcast()
}

// flushLocked makes every record written so far durable and readable, or
// rolls it back, for rotation and Close. With SyncInterval above 0 it
// fsyncs when anything was written since the last fsync. The caller holds
// wmu and mu; mu is released while an fsync runs.
func (l *Log) flushLocked() error {
	for l.syncing {
		l.synced.Wait()
	}
	l.rollbackLocked()
	if l.wseq > l.nextSeq {
		return l.awaitLocked(l.open, true)
	}
	if l.dirty {
		if err := l.fsync(l.active); err != nil {
			return fmt.Errorf("cannot sync spool segment %s: %w", l.segs[len(l.segs)-1].path, err)
		}
		l.dirty = false
	}
	return nil
}

// publishLocked makes the records before upto readable; they end at offset
// end of the active segment. It wakes a waiting reader.
func (l *Log) publishLocked(upto uint64, end int64) {
	if upto <= l.nextSeq {
		return
	}
	s := l.segs[len(l.segs)-1]
	s.n += upto - l.nextSeq
	s.end = end
	l.records += int64(upto - l.nextSeq)
	l.nextSeq = upto
	close(l.notify)
	l.notify = make(chan struct{})
}
