package ship

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/procfleet/procfleet/agent/spool"
)

// Redelivery. VictoriaMetrics acknowledges a body once it is parsed into
// memory and writes it to disk seconds later, so an upstream that crashes
// loses what it acknowledged last. With ship.redeliver_window above 0 the
// shipper keeps, per upstream, what it acknowledged within the window (and
// ship.redeliver_max_bytes): batches from memory as they are (the shipper
// owns them, nothing is copied), spooled records on disk, held in the spool
// (spool.Log.Hold) and acknowledged only once they leave the window. When
// an upstream becomes unreachable (result.unreachable), what it kept is
// made pending and sent again before anything else: in the first round to
// the other upstreams, then to any, that one included once it is back
// (it lost them). A pending batch from memory that no upstream takes goes
// to the spool, or without one waits like a fresh batch; pending spooled
// records stay in the spool and are tried again before the backlog.
//
// Everything here but crashed runs on the sender goroutine.

// keepBatch keeps b, which ep acknowledged, for the window. The window
// owns b from here.
func (s *Shipper) keepBatch(ep *endpoint, b *Batch) {
	if s.win == nil {
		return
	}
	s.win.add(kept{ep: ep, at: s.now(), size: int64(len(b.Body)), n: 1, batch: b})
}

// doneSpooled records that parts, consecutive spooled records, are done
// with: acknowledged at once without a window, else held and, when ep
// (not nil) took them, kept for the window. Records that leave the window
// are acknowledged by ackKept.
func (s *Shipper) doneSpooled(ep *endpoint, parts []spooled) {
	last := parts[len(parts)-1]
	if s.win == nil {
		s.ack(last.seq)
		return
	}
	if err := s.spool.Hold(last.rec); err != nil && !errors.Is(err, spool.ErrClosed) {
		s.warnThrottled("hold", "cannot keep a delivered batch in the spool; acknowledging it", "err", err)
		s.ack(last.seq)
		return
	}
	s.heldTo = max(s.heldTo, last.seq)
	if ep != nil {
		var size int64
		for _, p := range parts {
			size += int64(len(p.b.Body))
		}
		s.win.add(kept{ep: ep, at: s.now(), size: size, n: len(parts), from: parts[0].rec.Pos, last: last.seq})
	}
	s.ackKept()
}

// ackKept acknowledges the held records before the oldest one the window
// keeps or sends again.
func (s *Shipper) ackKept() {
	upto := s.heldTo
	if low, ok := s.win.oldestSpooled(); ok && low <= upto {
		upto = low - 1
	}
	if upto > s.ackedTo {
		s.ack(upto)
		s.ackedTo = upto
	}
}

// expire lets go of what left the window.
func (s *Shipper) expire() {
	if s.win == nil {
		return
	}
	s.win.trim(s.now())
	if s.spool != nil {
		s.ackKept()
	}
}

// expiryTimer returns a channel that fires when the oldest kept batch
// leaves the window (nil when none is kept) and the function that stops
// its timer.
func (s *Shipper) expiryTimer() (<-chan time.Time, func()) {
	if s.win == nil {
		return nil, func() {}
	}
	d, ok := s.win.nextExpiry(s.now())
	if !ok {
		return nil, func() {}
	}
	t := time.NewTimer(d + time.Millisecond)
	return t.C, func() { t.Stop() }
}

// windowReady returns a channel that holds a token when batches became
// pending; nil without a window.
func (s *Shipper) windowReady() <-chan struct{} {
	if s.win == nil {
		return nil
	}
	return s.win.ready
}

// pending reports whether batches wait to be sent again.
func (s *Shipper) pending() bool { return s.win != nil && s.win.pendingLen() > 0 }

// crashed makes pending what ep kept, now that it was found unreachable,
// and returns how many batches that is. Safe for concurrent use.
func (s *Shipper) crashed(ep *endpoint) int {
	if s.win == nil {
		return 0
	}
	n := s.win.take(ep)
	if n > 0 {
		s.logThrottled(slog.LevelWarn, ep.label+" redeliver", "upstream unreachable; sending what it acknowledged within the redelivery window again",
			"endpoint", ep.label, "batches", n, "window", s.cfg.RedeliverWindow)
	}
	return n
}

// redeliverPending sends the pending batches again, oldest first, and
// reports whether none is left: false when ctx ended or, with giveUp, a
// run of spooled records found no upstream (it stays pending).
func (s *Shipper) redeliverPending(ctx context.Context, giveUp bool) bool {
	if s.win == nil {
		return true
	}
	for {
		k, ok := s.win.popPending()
		if !ok {
			return true
		}
		if !s.redeliver(ctx, k, giveUp) {
			s.win.unpop(k)
			return false
		}
	}
}

// redeliver sends k again and reports whether it is done with: delivered
// (and kept for the upstream that took it), refused, spooled, or lost.
func (s *Shipper) redeliver(ctx context.Context, k kept, giveUp bool) bool {
	if k.batch == nil {
		return s.redeliverSpooled(ctx, k)
	}
	ep, err := s.deliver(ctx, k.batch, sendOpts{giveUp: giveUp, avoid: k.ep, again: true})
	switch {
	case err == nil:
		s.redelivered.Inc()
		s.keepBatch(ep, k.batch)
	case errors.Is(err, errRefused):
		s.refused(err)
	case errors.Is(err, errGaveUp) && s.spool != nil:
		s.store(k.batch)
	default:
		return false
	}
	return true
}

// redeliverSpooled reads k's records again from the spool and sends them
// as they were sent the first time. Records gone from the spool (over
// its max_age, or dropped to make room) are not sent.
func (s *Shipper) redeliverSpooled(ctx context.Context, k kept) bool {
	recs, err := s.spool.ReadFrom(k.from, k.n, 0)
	if err != nil {
		if !errors.Is(err, spool.ErrClosed) {
			s.warnThrottled("redeliver", "cannot read kept batches back from the spool; not sending them again", "err", err)
		}
		return true
	}
	for len(recs) > 0 && recs[len(recs)-1].Seq > k.last {
		recs = recs[:len(recs)-1]
	}
	if len(recs) == 0 {
		return true
	}
	parts, err := parseRecords(recs)
	if err != nil {
		return true // read and sent once: cannot happen short of damage
	}
	if err := s.sendSpooled(ctx, parts, k.ep); err != nil {
		return false
	}
	s.redelivered.Add(len(parts))
	return true
}

// storePending writes the pending batches from memory to the spool when
// the sender stops, so that a restart sends them; pending spooled records
// are in the spool already, not acknowledged.
func (s *Shipper) storePending() {
	if s.win == nil {
		return
	}
	for {
		k, ok := s.win.popPending()
		if !ok {
			return
		}
		if k.batch != nil {
			s.store(k.batch)
		}
	}
}
