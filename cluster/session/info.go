package session

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Phase is where a session stands with etcd.
type Phase int

// The phases of a session.
const (
	// Connecting: Run has not obtained its first lease yet.
	Connecting Phase = iota
	// Registered: the session holds a lease and the member key is written.
	Registered
	// Lost: the lease was lost (etcd unreachable for longer than the TTL,
	// the lease revoked, or a registration failed); Run is obtaining a new
	// one and will register again.
	Lost
	// Closed: Run has returned.
	Closed
)

// String returns the phase's name in lower case.
func (p Phase) String() string {
	switch p {
	case Connecting:
		return "connecting"
	case Registered:
		return "registered"
	case Lost:
		return "lost"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// Info is a snapshot of a session's state.
type Info struct {
	// Phase is the current phase.
	Phase Phase
	// Lease is the lease the member key is bound to; 0 unless Registered.
	Lease clientv3.LeaseID
	// Registrations counts the leases the member key was written with: 1
	// after the first registration, one more for each re-registration.
	Registrations int
	// Resumed counts the keep-alives that ended without an answer within
	// the TTL while etcd still held the lease, which the session kept
	// instead of registering again (see Run).
	Resumed int
	// Since is when the session entered Phase.
	Since time.Time
	// Err is why the session is Lost (or Connecting after a failed
	// attempt); nil otherwise.
	Err error
	// Renewed is when etcd last answered a keep-alive of the current
	// lease; zero until the first answer (the client's first keep-alive
	// goes out within 500ms of registration). Renewals do not signal a
	// change on the channel of Info.
	Renewed time.Time
}

// Info returns the session's current state and a channel that is closed
// at its next change. Reading both at once leaves no gap in which a change
// could be missed. It never blocks.
func (s *Session) Info() (Info, <-chan struct{}) {
	s.mu.Lock()
	info, changed := s.info, s.changed
	s.mu.Unlock()
	if ns := s.renewed.Load(); ns != 0 {
		info.Renewed = time.Unix(0, ns)
	}
	return info, changed
}

// Await waits until cond holds for the session's state and returns that
// state, or returns ctx's error. cond runs on the caller's goroutine.
func (s *Session) Await(ctx context.Context, cond func(Info) bool) (Info, error) {
	for {
		info, changed := s.Info()
		if cond(info) {
			return info, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return info, ctx.Err()
		}
	}
}

// update changes the state under the lock and wakes the waiters.
func (s *Session) update(f func(*Info)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.info.Phase
	f(&s.info)
	if s.info.Phase != prev {
		s.info.Since = time.Now()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}
