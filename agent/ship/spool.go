package ship

import (
	"context"
	"errors"
	"time"

	"github.com/procfleet/procfleet/agent/spool"
)

// spoolMaxRecords bounds the spooled batches sent together in one request.
const spoolMaxRecords = 4096

// spoolLoop is sendLoop with a spool: fresh batches first, each given one
// round of endpoints before it is spooled; the spool replayed while the
// queue is empty. After ctx is done it keeps delivering queued batches
// until sendCtx ends (the drain deadline) and spools the rest.
func (s *Shipper) spoolLoop(ctx, sendCtx context.Context) {
	round := 0 // replay rounds failed in a row, for the backoff
	for {
		if b := s.q.pop(); b != nil {
			switch {
			case sendCtx.Err() != nil:
				s.store(b)
			case s.spool.Len() > 0 && !s.anyHealthy():
				s.store(b) // an outage: straight to disk, behind the backlog
			default:
				if err := s.deliver(sendCtx, b, true); err != nil {
					s.store(b)
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		changed := s.spool.Changed() // before Len, so that no append is missed
		if s.spool.Len() > 0 {
			// Reading a backlog while no endpoint is healthy would only
			// read it again after the backoff.
			if s.anyHealthy() && s.replay(ctx) {
				round = 0
				continue
			}
			s.mu.Lock()
			wake := s.healthCh
			s.mu.Unlock()
			t := time.NewTimer(s.backoff(round))
			select {
			case <-t.C:
			case <-wake:
			case <-s.q.ready:
			case <-ctx.Done():
			}
			t.Stop()
			round++
			continue
		}
		select {
		case <-s.q.ready:
		case <-changed:
		case <-ctx.Done():
		}
	}
}

// replay sends the oldest spooled batches, merged, and acknowledges them.
// It reports false when no upstream took them (they stay in the spool) or
// ctx ended.
func (s *Shipper) replay(ctx context.Context) bool {
	recs, err := s.spool.NextN(ctx, spoolMaxRecords, s.merge)
	if err != nil {
		return false
	}
	b, last, n, err := mergeRecords(recs)
	if err != nil {
		// The checksum matched, so the record was written this way: a
		// version that this one cannot read. Keeping it would stop the
		// spool for good.
		s.dropRecord.Inc()
		s.warnThrottled("record", "cannot read a spooled batch; dropped it", "err", err, "seq", last)
		s.ack(last)
		return true
	}
	if err := s.deliver(ctx, b, true); err != nil {
		return false
	}
	s.replayed.Add(n)
	s.ack(last)
	return true
}

func (s *Shipper) ack(seq uint64) {
	if err := s.spool.Ack(seq); err != nil && !errors.Is(err, spool.ErrClosed) {
		s.warnThrottled("ack", "cannot record delivery in the spool; the batch may be sent again after a restart", "err", err)
	}
}

// mergeRecords joins the leading records that share query and encoding
// into one batch and returns it with the last joined record's sequence
// number and the number of records joined. Gzip members concatenate into a
// valid gzip stream; plain bodies are joined on line boundaries. When the
// first record cannot be read it returns its sequence number and the error.
func mergeRecords(recs []spool.Record) (*Batch, uint64, int, error) {
	first, err := parseRecord(recs[0].Data, recs[0].Created)
	if err != nil {
		return nil, recs[0].Seq, 1, err
	}
	parts := []*Batch{first}
	last, size := recs[0].Seq, len(first.Body)
	for _, r := range recs[1:] {
		b, err := parseRecord(r.Data, r.Created)
		if err != nil || b.Query != first.Query || b.Plain != first.Plain {
			break
		}
		parts = append(parts, b)
		last, size = r.Seq, size+len(b.Body)+1
	}
	if len(parts) == 1 {
		return first, last, 1, nil
	}
	out := &Batch{Created: first.Created, Query: first.Query, Plain: first.Plain,
		Body: make([]byte, 0, size)}
	for _, b := range parts {
		out.Body = append(out.Body, b.Body...)
		if b.Plain && len(b.Body) > 0 && b.Body[len(b.Body)-1] != '\n' {
			out.Body = append(out.Body, '\n')
		}
		out.Samples += b.Samples
		out.Created = minTime(out.Created, b.Created)
	}
	return out, last, len(parts), nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// store writes b to the spool, counting it as spooled or, when the spool
// refuses it, as dropped. Safe for concurrent use.
func (s *Shipper) store(b *Batch) {
	created := b.Created
	if created.IsZero() {
		created = s.now()
	}
	s.storeMu.Lock()
	s.record = AppendRecord(s.record[:0], b)
	err := s.spool.Append(s.record, created)
	s.storeMu.Unlock()
	switch {
	case err == nil:
		s.spooled.Inc()
	case errors.Is(err, spool.ErrFull):
		s.dropSpoolFull.Inc()
		s.warnThrottled("spool", "spool full; dropped a batch", "err", err)
	default:
		s.dropSpoolErr.Inc()
		s.warnThrottled("spool", "cannot spool a batch; dropped it", "err", err)
	}
}

// anyHealthy reports whether some endpoint takes batches.
func (s *Shipper) anyHealthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ep := range s.eps {
		if ep.healthy.Load() {
			return true
		}
	}
	return false
}
