package config

import (
	"fmt"
	"time"
)

// Spool configures an on-disk log of compressed batches: the agent's spool,
// which holds batches while no upstream takes them, and the relay's
// write-ahead log. It is host-local: a cluster's config never sets it.
type Spool struct {
	// Dir is the log's directory. For the agent, empty turns the spool off
	// (batches are then held in memory only, up to ship.queue_batches); the
	// packaged agent sets /var/lib/procfleet/spool. Required for the relay.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the log's size on disk. Default 1GiB for the agent,
	// 10GiB for the relay.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Full says what happens to a batch that does not fit under MaxBytes:
	// refuse keeps what is on disk and refuses the new batch (the relay
	// answers 429; the agent drops the new batch), drop_oldest deletes the
	// oldest batches to make room. Either is counted. Default drop_oldest
	// for the agent (recent data is worth more to a dashboard), refuse for
	// the relay (what it acknowledged is never dropped).
	Full string `yaml:"full"`
	// MaxAge drops batches older than this when they come up for sending,
	// counted; 0 keeps them until delivered. Default 24h for the agent, 0
	// for the relay.
	MaxAge Duration `yaml:"max_age"`
	// SyncInterval is how often written batches are fsynced. 0 fsyncs every
	// batch before it counts as stored (concurrent writers share an fsync).
	// Above 0 a batch is stored once written to the file, which survives a
	// crash of the process but not a power loss or kernel crash within the
	// interval. Default 1s for the agent, 0 for the relay.
	SyncInterval Duration `yaml:"sync_interval"`
	// SegmentBytes is the size of one segment file; space is reclaimed a
	// whole segment at a time, so MaxBytes should be several of them.
	// Default 64MiB.
	SegmentBytes ByteSize `yaml:"segment_bytes"`
}

// Spool full policies of Spool.Full.
const (
	SpoolRefuse     = "refuse"
	SpoolDropOldest = "drop_oldest"
)

// DefaultAgentSpool returns the agent's spool defaults (turned off).
func DefaultAgentSpool() Spool {
	return Spool{
		MaxBytes:     1 << 30,
		Full:         SpoolDropOldest,
		MaxAge:       Duration(24 * time.Hour),
		SyncInterval: Duration(time.Second),
		SegmentBytes: 64 << 20,
	}
}

// Validate checks s; key prefixes errors.
func (s Spool) Validate(key string) error {
	if s.Full != SpoolRefuse && s.Full != SpoolDropOldest {
		return fmt.Errorf("%s.full: %q is not accepted; want %s or %s", key, s.Full, SpoolRefuse, SpoolDropOldest)
	}
	if s.SegmentBytes < 64<<10 || s.SegmentBytes > 1<<30 {
		return fmt.Errorf("%s.segment_bytes: %s is not accepted; want 64KiB to 1GiB", key, FormatBytes(int64(s.SegmentBytes)))
	}
	if s.MaxBytes != 0 && s.MaxBytes < 2*s.SegmentBytes {
		return fmt.Errorf("%s.max_bytes: %s is not accepted; want 0 (unbounded) or at least twice segment_bytes (%s)",
			key, FormatBytes(int64(s.MaxBytes)), FormatBytes(int64(2*s.SegmentBytes)))
	}
	if s.MaxAge < 0 {
		return fmt.Errorf("%s.max_age: %s is not accepted; want 0 (keep until delivered) or a positive duration", key, s.MaxAge)
	}
	if s.SyncInterval < 0 || s.SyncInterval > Duration(time.Minute) {
		return fmt.Errorf("%s.sync_interval: %s is not accepted; want 0 (every batch) to 1m", key, s.SyncInterval)
	}
	return nil
}
