// Package session keeps a procfleet member registered in etcd.
//
// A Session holds an etcd lease alive and binds the member key
// (/procfleet/<cluster>/members/<kind>s/<node>) and the status key
// (/procfleet/<cluster>/status/<node>) to it, so that both disappear when
// the process dies and the lease expires. When the lease is lost — etcd
// unreachable for longer than the TTL, or the lease revoked — Run obtains a
// new lease and registers again, without the process restarting; Info and
// Await tell the state and its changes. When Run's context ends, Run revokes
// the lease so that the member disappears at once.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors of the package, checked with errors.Is.
var (
	// ErrNotRegistered: WriteStatus was called while the session holds no
	// lease. The status is kept and written at the next registration.
	ErrNotRegistered = errors.New("session: not registered")
	// ErrLeaseLost: etcd expired the lease, or did not confirm it within
	// its TTL. It is Info.Err while Run registers again.
	ErrLeaseLost = errors.New("session: lease lost")
	// ErrRunning: Run was called a second time.
	ErrRunning = errors.New("session: Run called twice")
)

// Session keeps one member registered. Its methods are safe for concurrent
// use; Run must be called once.
type Session struct {
	cli       *clientv3.Client
	memberKey string
	statusKey string
	value     string // the member key's JSON value
	opts      options
	log       *slog.Logger

	started atomic.Bool
	done    chan struct{}
	renewed atomic.Int64 // unix nanoseconds of the last keep-alive answer
	// lostWarned is when a failed registration was last logged at warn.
	lostWarned atomic.Int64

	mu      sync.Mutex // guards info, changed, status and opts.statusInterval
	info    Info
	changed chan struct{}
	status  statusState

	// writeMu serialises the writes that bind keys to a lease, so that a
	// status write with an old lease cannot land after a re-registration.
	writeMu sync.Mutex
	kick    chan struct{} // SetStatus wakes Run; capacity 1
	retime  chan struct{} // SetStatusInterval wakes Run; capacity 1
}

// New prepares the registration of node, a member of cluster described by
// m. m.Kind must be keys.Agent or keys.Relay; a zero m.StartTime is set to
// now. New starts nothing and talks to no one: Run does.
func New(cli *clientv3.Client, cluster, node string, m Member, opts ...Option) (*Session, error) {
	if cli == nil {
		return nil, errors.New("session: nil etcd client")
	}
	space, err := keys.New(cluster)
	if err != nil {
		return nil, err
	}
	memberKey, err := space.Member(m.Kind, node)
	if err != nil {
		return nil, err
	}
	statusKey, err := space.Status(node)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.spread < 0 {
		o.spread = o.ttl / 2
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if m.StartTime.IsZero() {
		m.StartTime = time.Now()
	}
	value, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("session: cannot encode member: %w", err)
	}
	return &Session{
		cli:       cli,
		memberKey: memberKey,
		statusKey: statusKey,
		value:     string(value),
		opts:      o,
		log:       o.logger.With("component", "session", "key", memberKey),
		done:      make(chan struct{}),
		info:      Info{Phase: Connecting, Since: time.Now()},
		changed:   make(chan struct{}),
		kick:      make(chan struct{}, 1),
		retime:    make(chan struct{}, 1),
	}, nil
}

func (o *options) validate() error {
	switch {
	case o.ttl < time.Second:
		return fmt.Errorf("session: TTL %s is below etcd's 1s unit", o.ttl)
	case o.statusInterval < 0:
		return fmt.Errorf("session: negative status interval %s", o.statusInterval)
	case o.revokeTimeout <= 0:
		return fmt.Errorf("session: revoke timeout %s is not positive", o.revokeTimeout)
	case o.spread >= o.ttl:
		return fmt.Errorf("session: re-registration spread %s is not below the TTL %s", o.spread, o.ttl)
	case o.retryMin <= 0 || o.retryMax < o.retryMin:
		return fmt.Errorf("session: retry waits %s..%s: need 0 < min <= max", o.retryMin, o.retryMax)
	case o.logger == nil:
		return errors.New("session: nil logger")
	}
	return nil
}

// MemberKey returns the key the member is registered under.
func (s *Session) MemberKey() string { return s.memberKey }

// StatusKey returns the key SetStatus and WriteStatus write.
func (s *Session) StatusKey() string { return s.statusKey }

// Done is closed when Run has returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Run registers the member and keeps it registered until ctx ends, then
// revokes the lease (within the revoke timeout) and returns nil. It owns
// every goroutine it starts, and they have exited when it returns.
func (s *Session) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(s.done)
	defer s.update(func(i *Info) { i.Phase, i.Lease, i.Err = Closed, 0, nil })

	wait := s.opts.retryMin
	var stale clientv3.LeaseID // a lost lease that etcd may still hold
	for ctx.Err() == nil {
		lease, alive, stop, err := s.register(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.setLost(err)
			s.sleep(ctx, wait)
			wait = min(2*wait, s.opts.retryMax)
			continue
		}
		wait = s.opts.retryMin
		if stale != 0 {
			// Nothing is bound to it any more; revoking spares etcd
			// the wait for its expiry.
			s.revoke(ctx, stale)
			stale = 0
		}
		for {
			err = s.hold(ctx, lease, alive)
			stop()
			if ctx.Err() != nil || !errors.Is(err, ErrLeaseLost) {
				break
			}
			var kept bool
			if alive, stop, kept = s.resume(ctx, lease); !kept {
				break
			}
		}
		if ctx.Err() != nil {
			s.revoke(ctx, lease)
			break
		}
		s.setLost(err)
		stale = lease
	}
	return nil
}

// resume keeps lease after its keep-alive ended without an answer within
// the TTL, when etcd still holds the lease with the member key bound to
// it, and restarts its keep-alive. The client ends a keep-alive whose
// answers come later than the TTL, but etcd renewed the lease on every
// request it received: the answers were late, not the lease lost (a
// process short of CPU reads them late; so does a congested connection).
// Registering again would grant a lease, write the member key under it
// (an event to every member's watch) and revoke the old one: three writes
// through raft and a fan-out to the fleet, for nothing, and more of them
// the slower the member already is. kept is false when etcd let the lease
// expire, or cannot say within half the TTL: Run registers again.
func (s *Session) resume(ctx context.Context, lease clientv3.LeaseID) (_ <-chan *clientv3.LeaseKeepAliveResponse, stop func(), kept bool) {
	s.log.Info("keep-alive of the lease ended without an answer within its TTL; asking etcd whether it still holds it",
		"lease", fmt.Sprintf("%x", lease))
	// Half the TTL: etcd renewed the lease until about a third of the TTL
	// before the client gave up on it, so an answer that takes longer
	// comes too late to keep it, and a member cut off from etcd is
	// declared lost at most that much later.
	tctx, cancel := context.WithTimeout(ctx, s.opts.ttl/2)
	defer cancel()
	ttl, err := s.cli.TimeToLive(tctx, lease, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || !slices.ContainsFunc(ttl.Keys, func(k []byte) bool { return string(k) == s.memberKey }) {
		return nil, nil, false
	}
	kctx, stop := context.WithCancel(ctx)
	alive, err := s.cli.KeepAlive(kctx, lease)
	if err != nil {
		stop()
		return nil, nil, false
	}
	s.update(func(i *Info) { i.Resumed++ })
	s.log.Info("etcd still holds the lease; keeping it", "lease", fmt.Sprintf("%x", lease), "ttl_seconds", ttl.TTL)
	return alive, stop, true
}

// register obtains a lease, writes the member key and the latest status
// bound to it in one transaction, and starts the lease's keep-alive. stop
// ends the keep-alive.
func (s *Session) register(ctx context.Context) (_ clientv3.LeaseID, _ <-chan *clientv3.LeaseKeepAliveResponse, stop func(), _ error) {
	// An attempt that takes longer than the TTL would yield a lease about
	// to expire.
	actx, cancel := context.WithTimeout(ctx, s.opts.ttl)
	defer cancel()
	grant, err := s.cli.Grant(actx, ttlSeconds(s.opts.ttl))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("cannot grant lease: %w", err)
	}
	lease := grant.ID
	s.mu.Lock()
	again := s.info.Registrations > 0
	s.mu.Unlock()
	if again && s.opts.spread > 0 {
		// Spread the fleet's re-registrations after an outage (see
		// WithReregisterSpread); the lease lives for the TTL meanwhile.
		t := time.NewTimer(rand.N(s.opts.spread))
		select {
		case <-t.C:
		case <-actx.Done():
			t.Stop()
			s.revoke(ctx, lease)
			return 0, nil, nil, fmt.Errorf("cannot write %s: %w", s.memberKey, actx.Err())
		}
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ops := []clientv3.Op{clientv3.OpPut(s.memberKey, s.value, clientv3.WithLease(lease))}
	st, seq := s.pendingStatus()
	if st != nil {
		ops = append(ops, clientv3.OpPut(s.statusKey, string(st), clientv3.WithLease(lease)))
	}
	if _, err := s.cli.Txn(actx).Then(ops...).Commit(); err != nil {
		s.revoke(ctx, lease)
		return 0, nil, nil, fmt.Errorf("cannot write %s: %w", s.memberKey, err)
	}
	if st != nil {
		s.statusWritten(seq, st)
	}

	kctx, stop := context.WithCancel(ctx)
	alive, err := s.cli.KeepAlive(kctx, lease)
	if err != nil {
		stop()
		s.revoke(ctx, lease)
		return 0, nil, nil, fmt.Errorf("cannot keep lease %x alive: %w", lease, err)
	}
	s.renewed.Store(0)
	s.update(func(i *Info) {
		i.Phase, i.Lease, i.Err = Registered, lease, nil
		i.Registrations++
	})
	s.log.Info("registered", "lease", fmt.Sprintf("%x", lease), "ttl_seconds", grant.TTL)
	return lease, alive, stop, nil
}

// hold keeps the lease until the keep-alive ends or ctx ends, writing the
// status as SetStatus asks.
func (s *Session) hold(ctx context.Context, lease clientv3.LeaseID, alive <-chan *clientv3.LeaseKeepAliveResponse) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// armed: the timer holds back the next write, for the rate limit or,
	// with backoff, after a failed write.
	armed, backoff := false, false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-alive:
			if !ok {
				return fmt.Errorf("%w: lease %x", ErrLeaseLost, lease)
			}
			s.renewed.Store(time.Now().UnixNano())
			continue
		case <-s.kick:
			if armed && !backoff {
				// A status may be due sooner than the wait armed for
				// the interval (SetStatusWithin): measure it again.
				timer.Stop()
				armed = false
			}
		case <-s.retime:
			if armed && !backoff {
				// The wait was for the old interval: measure it again.
				timer.Stop()
				armed = false
			}
		case <-timer.C:
			armed, backoff = false, false
		}
		if armed {
			continue
		}
		if d := s.statusDelay(); d > 0 {
			timer.Reset(d)
			armed = true
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, s.opts.ttl)
		err := s.writeStatus(wctx, lease)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cannot write status; will retry", "err", err)
			timer.Reset(s.opts.retryMax)
			armed, backoff = true, true
		}
	}
}

// setLost records why the session holds no lease.
func (s *Session) setLost(err error) {
	var prev Phase
	s.update(func(i *Info) {
		prev = i.Phase
		if i.Phase != Connecting {
			i.Phase = Lost
		}
		i.Lease, i.Err = 0, err
	})
	switch now := time.Now(); {
	case prev == Registered:
		s.log.Warn("lost registration; registering again", "err", err)
		s.lostWarned.Store(now.UnixNano())
	case now.Sub(time.Unix(0, s.lostWarned.Load())) >= time.Minute:
		// Attempts fail every second or so while etcd is unreachable: say
		// so once a minute, the rest at debug.
		s.log.Warn("still not registered; retrying", "err", err)
		s.lostWarned.Store(now.UnixNano())
	default:
		s.log.Debug("registration attempt failed", "err", err)
	}
}

// revoke revokes lease within the revoke timeout, even when ctx has
// ended: that is when revoking matters most.
func (s *Session) revoke(ctx context.Context, lease clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.revokeTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(rctx, lease); err != nil {
		s.log.Debug("cannot revoke lease; it will expire", "lease", fmt.Sprintf("%x", lease), "err", err)
	}
}

// sleep waits about d (with jitter) or until ctx ends.
func (s *Session) sleep(ctx context.Context, d time.Duration) {
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ttlSeconds rounds d up to whole seconds.
func ttlSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
