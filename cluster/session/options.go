package session

import (
	"log/slog"
	"time"
)

// Option changes a default of New.
type Option func(*options)

type options struct {
	ttl            time.Duration
	statusInterval time.Duration
	revokeTimeout  time.Duration
	retryMin       time.Duration
	retryMax       time.Duration
	spread         time.Duration // -1: half the TTL
	logger         *slog.Logger
}

func defaultOptions() options {
	return options{
		ttl:            10 * time.Second,
		statusInterval: 10 * time.Second,
		revokeTimeout:  2 * time.Second,
		retryMin:       100 * time.Millisecond,
		retryMax:       2 * time.Second,
		spread:         -1,
		logger:         slog.New(slog.DiscardHandler),
	}
}

// WithTTL sets the lease's time to live, rounded up to whole seconds (etcd's
// unit); at least 1s. Default 10s. The member disappears from the cluster
// at most this long after its process dies without revoking its lease;
// etcd outages shorter than the TTL do not lose the registration.
func WithTTL(ttl time.Duration) Option {
	return func(o *options) { o.ttl = ttl }
}

// WithStatusInterval sets the least time between two status writes made by
// SetStatus. Default 10s. WriteStatus is not limited; SetStatusInterval
// changes it while the session runs.
func WithStatusInterval(d time.Duration) Option {
	return func(o *options) { o.statusInterval = d }
}

// WithRevokeTimeout bounds how long Run waits, when its context ends, for
// etcd to revoke the lease. Default 2s. When the revoke does not complete,
// the member disappears only when the lease expires.
func WithRevokeTimeout(d time.Duration) Option {
	return func(o *options) { o.revokeTimeout = d }
}

// WithRetry sets the least and the most time between two attempts to
// obtain a lease after a failure; the wait doubles from least to most, with
// jitter so that a fleet does not come back all at once. Default 100ms and
// 2s.
func WithRetry(least, most time.Duration) Option {
	return func(o *options) { o.retryMin, o.retryMax = least, most }
}

// WithReregisterSpread sets the longest wait between obtaining a new
// lease and writing the member key with it when the session registers
// again (not at its first registration): each re-registration waits a
// random part of d. When etcd comes back from an outage, the attempts
// that waited for it all get their lease at once; without the wait, every
// member would write its key in the same second, and every member would
// receive every other's registration in that second. Below the TTL, so
// that the new lease does not expire before its keep-alive starts; 0
// writes at once; negative: the default, half the TTL.
func WithReregisterSpread(d time.Duration) Option {
	return func(o *options) { o.spread = d }
}

// WithLogger sets the logger. Default: discard. Run logs each change of
// phase, not each failed attempt.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}
