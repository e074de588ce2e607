// Package spool is a durable, bounded, append-only log of opaque records on
// disk. The agent spools compressed batches into it while no upstream takes
// data, and the relay uses it as its write-ahead log; both read it back in
// order and delete a record only after it was acknowledged.
//
// # On-disk format
//
// A log is a directory of segment files named %016x.seg after the sequence
// number of their first record, plus a file named "ack". A segment is a run
// of records, each a 16-byte header followed by its payload:
//
//	offset 0  uint32 LE  CRC32-C (Castagnoli) of bytes 4..16+length
//	offset 4  uint32 LE  payload length
//	offset 8  int64  LE  creation time, unix milliseconds
//	offset 16 payload
//
// The checksum covers the length and the timestamp as well as the payload,
// so that a damaged header is caught too. Records of one segment have
// consecutive sequence numbers. A new segment starts once the current one
// holds at least Config.SegmentBytes. The "ack" file holds the highest
// acknowledged sequence number (uint64 LE, then its CRC32-C) and is replaced
// atomically by rename. The directory is 0700 and every file 0600,
// whatever the umask; Open tightens those of older versions (see Open).
//
// # Recovery
//
// Open reads every segment and keeps each record up to the first one that
// is incomplete or fails its checksum:
//
//   - An incomplete record (header or payload cut short by the end of the
//     file), or a tail of zero bytes, at the end of the last segment is a
//     torn write: the file is truncated to its last complete record and
//     appending resumes there.
//   - A record whose checksum does not match, or a torn tail in any other
//     segment, is corruption: the rest of that segment is skipped (there is
//     no resync), procfleet_spool_corrupt_total is incremented and the
//     segment is listed in Recovery. Later segments are read as usual, and
//     new records never go after the damage.
//
// # Durability
//
// With Config.SyncInterval 0, Append returns nil only after an fsync that
// started after its record was written has succeeded, so the record
// survives a crash of the process or of the machine. Concurrent Appends
// share fsyncs (group commit): each writes its record, then the first to
// wait fsyncs the active segment for every record written so far while the
// others wait for it, and records written during that fsync wait for the
// next one. A record becomes readable (Next, NextN, Len, Changed, metrics)
// only once durable, in sequence order. When an fsync fails, every Append
// waiting for it fails and none of their records is ever readable (see
// Append).
//
// With SyncInterval above 0, Append returns as soon as its record is
// written to the file, and the record is readable at once. It survives a
// crash of the process; a crash of the machine loses at most the records
// appended in the SyncInterval before it, which may already have been
// read. Starting a new segment and Close fsync in both modes.
//
// # Delivery
//
// Delivery is at least once. Acknowledgements are persisted at most every
// Config.AckInterval and on Close, and by deleting a segment once all its
// records are acknowledged; after a crash the records acknowledged since the
// last persisted ack are delivered again. A record is deleted only after it
// was acknowledged, dropped for age, or dropped by the DropOldest policy.
//
// A reader that may have to send a delivered record again for a while
// holds it (Hold) rather than acknowledging it: reading goes on after it
// and Len no longer counts it, yet it stays on disk, readable with
// ReadFrom, until Ack deletes it, or until space runs out: at MaxBytes, or
// on a full disk, segments whose records are all held are deleted before
// a new record is refused. Holding is not persisted: after a restart held
// records are delivered again.
package spool

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrFull is returned by Append when the record does not fit under
	// Config.MaxBytes and the policy is Refuse.
	ErrFull = errors.New("spool: full")
	// ErrClosed is returned by the methods of a closed Log.
	ErrClosed = errors.New("spool: closed")
	// ErrTooLarge is returned by Append for a payload over MaxRecordBytes.
	ErrTooLarge = errors.New("spool: record too large")
)

// MaxRecordBytes is the largest payload a record may hold. Recovery treats a
// header announcing more as corruption rather than as a torn write.
const MaxRecordBytes = 256 << 20

// FullPolicy says what Append does when the log is at Config.MaxBytes.
type FullPolicy int

const (
	// Refuse makes Append return ErrFull; nothing on disk is lost.
	Refuse FullPolicy = iota
	// DropOldest deletes the oldest segments, acknowledged or not, until
	// the record fits, and counts their unacknowledged records as dropped.
	DropOldest
)

// String returns the policy name as used in configuration.
func (p FullPolicy) String() string {
	switch p {
	case Refuse:
		return "refuse"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// Config configures a Log. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// SegmentBytes is the size in bytes at which a new segment file is
	// started. A segment may exceed it by one record. Default 64 MiB.
	SegmentBytes int64
	// MaxBytes bounds the total size in bytes of the segment files; 0 means
	// unbounded. Space is reclaimed a whole segment at a time, so it should
	// be several SegmentBytes. Default 0.
	MaxBytes int64
	// Full is the policy when a record does not fit under MaxBytes.
	// Default Refuse.
	Full FullPolicy
	// MaxAge drops records older than this (by their creation time) when
	// Next or NextN reaches them; 0 keeps records forever. Default 0.
	MaxAge time.Duration
	// SyncInterval is how often appended data is fsynced. 0 fsyncs before
	// every Append returns, one fsync shared by the Appends that wait
	// together. Above 0, Append returns once the record is written to the
	// file (one write(2), no user-space buffer), which survives a crash of
	// the process but not of the machine: a power loss or kernel crash
	// loses at most the records appended in the last SyncInterval. See
	// Durability in the package documentation. Default 0.
	SyncInterval time.Duration
	// AckInterval is how often, at most, Ack persists the acknowledged
	// position; 0 persists on every Ack. After a crash, records acknowledged
	// since the last persist are delivered again. Default 1s.
	AckInterval time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{SegmentBytes: 64 << 20, AckInterval: time.Second}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes <= 0:
		return fmt.Errorf("spool: SegmentBytes = %d: must be above 0", c.SegmentBytes)
	case c.MaxBytes < 0:
		return fmt.Errorf("spool: MaxBytes = %d: must be 0 (unbounded) or above", c.MaxBytes)
	case c.MaxBytes > 0 && c.MaxBytes < c.SegmentBytes:
		return fmt.Errorf("spool: MaxBytes = %d: must be at least SegmentBytes (%d)", c.MaxBytes, c.SegmentBytes)
	case c.Full != Refuse && c.Full != DropOldest:
		return fmt.Errorf("spool: Full = %d: must be Refuse or DropOldest", int(c.Full))
	case c.MaxAge < 0:
		return fmt.Errorf("spool: MaxAge = %s: must be 0 (keep forever) or above", c.MaxAge)
	case c.SyncInterval < 0:
		return fmt.Errorf("spool: SyncInterval = %s: must be 0 (every append) or above", c.SyncInterval)
	case c.AckInterval < 0:
		return fmt.Errorf("spool: AckInterval = %s: must be 0 (every ack) or above", c.AckInterval)
	}
	return nil
}

// Record is one entry of the log.
type Record struct {
	Seq     uint64    // sequence number, increasing across the log's life
	Data    []byte    // payload; owned by the caller
	Created time.Time // creation time given to Append, millisecond precision
	Pos     Pos       // where it lies, for Hold and ReadFrom
}

// Recovery is what Open found on disk.
type Recovery struct {
	Segments  int      // segment files read
	Records   int      // unacknowledged records recovered
	Truncated int64    // bytes of torn tail cut from the last segment
	Corrupt   []string // one note per damaged segment: file, offset, reason
	// Tightened counts the directory and files whose group and other
	// permissions Open removed (older versions made them 0755 and 0644).
	Tightened int
	// Exposed notes each path left readable by others: owned by another
	// user (not changed), or whose mode could not be changed.
	Exposed []string
}
