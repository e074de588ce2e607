package spool

import (
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

// FromConfig turns a spool block of the agent or relay configuration into
// a Config.
func FromConfig(c config.Spool) Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = int64(c.SegmentBytes)
	cfg.MaxBytes = int64(c.MaxBytes)
	cfg.MaxAge = c.MaxAge.D()
	cfg.SyncInterval = c.SyncInterval.D()
	// A crash re-sends what was acknowledged since the last persisted
	// position: at a relay's forwarding rate, a second of it is many
	// bodies, and one small fsync every 100 ms costs little.
	cfg.AckInterval = 100 * time.Millisecond
	cfg.Full = Refuse
	if c.Full == config.SpoolDropOldest {
		cfg.Full = DropOldest
	}
	return cfg
}

// OpenLogged opens the log configured by c, as Open does, and logs what
// recovery found: one line for the log, and a warning per damaged segment.
func OpenLogged(c config.Spool, set *metrics.Set, log *slog.Logger) (*Log, error) {
	start := time.Now()
	l, err := Open(c.Dir, FromConfig(c), set)
	if err != nil {
		return nil, err
	}
	r := l.Recovery()
	for _, note := range r.Corrupt {
		log.Warn("skipped a damaged part of the log", "dir", c.Dir, "damage", note)
	}
	if r.Tightened > 0 {
		log.Info("made the log readable by its owner only", "dir", c.Dir, "paths", r.Tightened)
	}
	for _, note := range r.Exposed {
		log.Warn("others may read or change the log", "dir", c.Dir, "note", note)
	}
	log.Info("log opened", "dir", c.Dir, "segments", r.Segments, "pending", r.Records,
		"torn_bytes_cut", r.Truncated, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}
