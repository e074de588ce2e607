package ship

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// errGaveUp is deliver's answer when it may give up and every endpoint
// failed the batch in one round, or none is healthy.
var errGaveUp = errors.New("no upstream took the batch")

// errRefused wraps deliver's answer when an upstream refused the body
// (400, 413, 415, 422): sent again as it is, it would be refused again.
var errRefused = errors.New("upstream refused the body")

// sendOpts shape one deliver.
type sendOpts struct {
	// giveUp returns errGaveUp rather than waiting for a backoff.
	giveUp bool
	// avoid, the upstream that lost a redelivered batch, is tried only
	// after the others (or when there are none), so that a sole upstream
	// gets the batch again once it is back.
	avoid *endpoint
	// again marks a redelivery, which leaves other pending redeliveries to
	// its caller.
	again bool
}

// deliver sends b until an endpoint takes or refuses it. It returns the
// endpoint and nil when b was taken, an error wrapping errRefused when it
// was refused, ctx's error when ctx ends first, and errGaveUp when
// o.giveUp is set and it would otherwise wait for a backoff. The caller
// counts a refused batch. Unless o.again is set, what an unreachable
// upstream acknowledged within the redelivery window is sent again first:
// what is pending when deliver starts, and what an upstream that becomes
// unreachable under b held.
func (s *Shipper) deliver(ctx context.Context, b *Batch, o sendOpts) (*endpoint, error) {
	s.pk.pack(b)
	var tried []*endpoint
	avoiding := o.avoid != nil
	if avoiding {
		tried = append(tried, o.avoid)
	}
	round, redeliver := 0, !o.again
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if redeliver && s.pending() {
			s.redeliverPending(ctx, o.giveUp)
		}
		redeliver = false
		p := s.pick(tried)
		switch p.state {
		case throttled:
			sleep(ctx, p.wait, nil)
			continue
		case allTried, noneHealthy:
			if avoiding && p.state == allTried {
				// The others failed or there are none: the upstream that
				// lost the batch may take it again.
				avoiding = false
				tried = slices.DeleteFunc(tried, func(ep *endpoint) bool { return ep == o.avoid })
				continue
			}
			if o.giveUp {
				return nil, errGaveUp
			}
			sleep(ctx, s.backoff(round), p.wake) // wake is nil for allTried
			round++
			tried = tried[:0]
			continue
		}
		r := s.attempt(ctx, p.ep, b)
		if s.settle(p.ep, r, round) {
			if r.outcome == rejected {
				return nil, fmt.Errorf("%w: %w", errRefused, r.err)
			}
			return p.ep, nil
		}
		if r.outcome == aborted {
			return nil, r.err
		}
		if r.unreachable && s.crashed(p.ep) > 0 && !o.again {
			redeliver = true
		}
		s.retries.Inc()
		switch {
		case r.outcome == busy:
			round++ // the next 429 without Retry-After waits longer
		case r.retryAfter == 0:
			tried = append(tried, p.ep)
		}
	}
}

// settle records the result of an attempt on ep and reports whether the
// batch is done with (delivered or refused).
func (s *Shipper) settle(ep *endpoint, r result, round int) bool {
	switch r.outcome {
	case delivered:
		s.markSuccess(ep, "send")
		return true
	case rejected:
		s.markRejected(ep, r.err)
		return true
	case busy:
		d := r.retryAfter
		if d == 0 {
			d = s.backoff(round)
		}
		s.markFailure(ep, r.err, false, d)
		s.warnThrottled(ep.label, "upstream is busy; retrying later", "err", r.err, "retry_in", d)
	case failed:
		s.markFailure(ep, r.err, true, r.retryAfter)
		s.warnThrottled(ep.label, "send failed; retrying", "err", r.err)
	}
	return false
}
