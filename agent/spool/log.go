package spool

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// segment is one segment file. Its readable records have the sequence
// numbers first .. first+n-1 and occupy bytes [0, end); size is the file's
// length, which exceeds end when damage follows the valid records or, in
// the active segment, when records are written but not yet durable.
type segment struct {
	first uint64
	n     uint64
	end   int64
	size  int64
	path  string
}

// Log is a spool directory opened for appending and reading. Its methods
// are safe for concurrent use: the record writes of Append are serialised
// among themselves (their fsyncs are shared, see Append), and Next, NextN,
// Hold, ReadFrom and Ack are meant for one reader at a time, since they
// share its positions (the oldest record not held, the oldest not
// acknowledged).
type Log struct {
	dir string
	cfg Config

	// wmu serialises record writes, rotation, rollback and the interval
	// sync, so that the record write happens without holding mu. The
	// fsync of group commit holds neither lock (see commit.go).
	wmu    sync.Mutex
	wbuf   []byte
	active *os.File // open for writing; the file of segs[len(segs)-1]
	dirty  bool     // written since the last fsync (interval mode)
	timer  *time.Timer
	// syncErr is a failed interval fsync, returned by the next Append.
	syncErr error
	// fsync syncs a segment file: (*os.File).Sync, replaced by tests to
	// inject faults.
	fsync func(*os.File) error

	mu      sync.Mutex
	closed  bool
	segs    []*segment // oldest first; the last is the active one
	sealed  bool       // the active segment must not take more records
	nextSeq uint64     // the next record to become readable
	// Group commit (SyncInterval 0). Records nextSeq .. wseq-1 are written
	// to the active segment past its end and wait for an fsync; open
	// holds them, or inflight while a leader fsyncs (syncing). failed is
	// a failed fsync whose records are not yet rolled back. synced is
	// broadcast on mu whenever syncing ends or a group is resolved.
	wseq     uint64
	open     *syncGroup
	inflight *syncGroup
	syncing  bool
	failed   error
	synced   *sync.Cond
	// The head is the oldest unacknowledged record: headSeq at headOff in
	// segs[0]. When headSeq == segs[0].first+segs[0].n there is none there.
	headSeq uint64
	headOff int64
	head    header // header at headOff, valid when headOK
	headOK  bool
	reader  *os.File // read handle of segs[0]
	bytes   int64
	records int64
	notify  chan struct{} // closed and replaced when records arrive or on Close

	// rd is the oldest record not held, when past the head (see Hold).
	rd Pos

	acked        uint64 // every seq <= acked is delivered
	ackPersisted uint64
	ackAt        time.Time

	recovery Recovery

	droppedFull *metrics.Counter
	droppedAge  *metrics.Counter
	corrupt     *metrics.Counter
}

// Open opens the log in dir, creating dir if needed (0700, and missing
// parents too), and recovers it (see the package documentation). Files
// are created 0600. A directory and files left readable by others by an
// older version are made 0700 and 0600 when this process owns them (see
// Recovery). It registers the procfleet_spool_* metrics in
// set, so a set holds at most one Log. Open starts no goroutines; with
// SyncInterval above 0 a timer fires after appends until Close.
func Open(dir string, cfg Config, set *metrics.Set) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	l := &Log{
		dir:         dir,
		cfg:         cfg,
		notify:      make(chan struct{}),
		fsync:       (*os.File).Sync,
		open:        &syncGroup{},
		droppedFull: set.NewCounter(`procfleet_spool_dropped_total{reason="full"}`),
		droppedAge:  set.NewCounter(`procfleet_spool_dropped_total{reason="age"}`),
		corrupt:     set.NewCounter(`procfleet_spool_corrupt_total`),
	}
	l.synced = sync.NewCond(&l.mu)
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	set.NewGauge(`procfleet_spool_bytes`, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.bytes)
	})
	set.NewGauge(`procfleet_spool_records`, func() float64 {
		return float64(l.Len())
	})
	set.NewGauge(`procfleet_spool_oldest_age_seconds`, func() float64 {
		return l.OldestAge().Seconds()
	})
	set.NewGauge(`procfleet_spool_held_records`, func() float64 {
		return float64(l.Held())
	})
	return l, nil
}

// Recovery returns what Open found on disk, for the caller to log.
func (l *Log) Recovery() Recovery { return l.recovery }

// Len returns the number of readable records not yet acknowledged, held
// (see Hold) nor dropped, the value of the procfleet_spool_records gauge.
// Records whose Append still waits for its fsync are not counted. It does
// not block on I/O and keeps working after Close.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.records - l.heldLocked())
}

// Changed returns a channel that is closed the next time a record becomes
// readable, or when the log is closed (at once if it already is). It lets
// one goroutine wait on several sources: take the channel first, then look
// for records (Len), and select on it only when there were none, so that a
// record arriving in between is not missed. It does not block.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notify
}

func (l *Log) recover() error {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("cannot read spool directory: %w", err)
	}
	if err := l.tighten(ents); err != nil {
		return err
	}
	for _, e := range ents {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			l.segs = append(l.segs, &segment{first: first, path: filepath.Join(l.dir, e.Name())})
		}
	}
	slices.SortFunc(l.segs, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	l.acked = readAck(filepath.Join(l.dir, ackName))
	l.ackPersisted = l.acked
	l.recovery.Segments = len(l.segs)
	for i, s := range l.segs {
		if err := l.scan(s, i == len(l.segs)-1); err != nil {
			return err
		}
		l.nextSeq = max(l.nextSeq, s.first+s.n)
		l.bytes += s.size
	}
	l.nextSeq = max(l.nextSeq, l.acked+1)
	// Append to the last segment only where the next record belongs.
	if n := len(l.segs); n == 0 || l.sealed || l.segs[n-1].first+l.segs[n-1].n != l.nextSeq {
		if n > 0 && l.sealed {
			// The damaged records had numbers too; never reuse them.
			l.nextSeq = max(l.nextSeq, l.segs[n-1].first+l.segs[n-1].n+1)
		}
		if err := l.createSegment(); err != nil {
			return err
		}
	} else {
		f, err := os.OpenFile(l.segs[n-1].path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("cannot open spool segment %s: %w", l.segs[n-1].path, err)
		}
		l.active = f
	}
	for _, s := range l.segs {
		if s.first+s.n > l.acked+1 {
			l.records += int64(s.first + s.n - max(s.first, l.acked+1))
		}
	}
	l.recovery.Records = int(l.records)
	l.wseq = l.nextSeq
	l.headSeq = l.segs[0].first
	return l.skipAckedLocked()
}

// scan reads segment s and fixes it up as the package documentation says.
func (l *Log) scan(s *segment, last bool) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot open spool segment %s: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat spool segment %s: %w", s.path, err)
	}
	res, err := scanSegment(f, fi.Size())
	if err != nil {
		return fmt.Errorf("cannot read spool segment %s: %w", s.path, err)
	}
	s.n, s.end, s.size = res.n, res.end, fi.Size()
	switch {
	case res.damage == torn && last:
		if err := f.Truncate(res.end); err != nil {
			return fmt.Errorf("cannot truncate torn spool segment %s: %w", s.path, err)
		}
		l.recovery.Truncated += s.size - res.end
		s.size = res.end
	case res.damage != clean:
		l.corrupt.Inc()
		l.recovery.Corrupt = append(l.recovery.Corrupt,
			fmt.Sprintf("%s: %s at offset %d; skipped %d bytes", s.path, res.reason, res.end, s.size-res.end))
		l.sealed = last
	}
	return nil
}

// createSegment starts a new active segment named after nextSeq. The
// caller holds wmu and mu, or is Open.
func (l *Log) createSegment() error {
	s := &segment{first: l.nextSeq, path: filepath.Join(l.dir, segmentName(l.nextSeq))}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("cannot create spool segment %s: %w", s.path, err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	if l.active != nil {
		l.active.Close()
	}
	l.active = f
	l.sealed = false
	l.segs = append(l.segs, s)
	return nil
}

// OldestAge returns how long ago the oldest record neither acknowledged
// nor held was created, or 0 when there is none.
func (l *Log) OldestAge() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	if l.rd.seq > l.headSeq {
		return l.oldestHeldAgeLocked()
	}
	if ok, err := l.headLocked(); !ok || err != nil {
		return 0
	}
	return time.Since(time.UnixMilli(l.head.createdMs))
}

// Close syncs and closes the log and persists the acknowledged position.
// It wakes a blocked Next or NextN, which returns ErrClosed, and closes the
// Changed channel. Close is idempotent; it waits for a record write in
// progress and for a running fsync, and fsyncs the records whose Appends
// still wait, which then return (nil, or the fsync's error). A call after
// Close returns ErrClosed, except Len, Changed, OldestAge and Recovery.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	err := l.flushLocked()
	l.closed = true
	close(l.notify)
	if l.timer != nil {
		l.timer.Stop()
	}
	if perr := l.persistAckLocked(); err == nil {
		err = perr
	}
	l.closeFiles()
	return err
}

func (l *Log) closeFiles() {
	if l.active != nil {
		l.active.Close()
	}
	if l.reader != nil {
		l.reader.Close()
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open spool directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync spool directory: %w", err)
	}
	return nil
}
