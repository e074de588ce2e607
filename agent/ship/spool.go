package ship

import (
	"context"
	"errors"
	"log/slog"
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
	defer s.storePending()
	round := 0 // replay rounds failed in a row, for the backoff
	for {
		s.expire()
		if s.st.cur != nil && (ctx.Err() != nil || s.streamOver()) {
			s.closeStream(sendCtx)
		}
		s.keepAlive(sendCtx)
		if b := s.nextBatch(); b != nil {
			if ctx.Err() == nil && (s.spool.Len() == 0 || s.anyHealthy()) && s.offer(sendCtx, b) {
				continue
			}
			s.sendFresh(sendCtx, b)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		changed := s.spool.Changed() // before Len, so that no append is missed
		if s.spool.Len() > 0 || s.pending() {
			// Reading a backlog while no endpoint is healthy would only
			// read it again after the backoff.
			if s.anyHealthy() && s.redeliverPending(ctx, true) && (s.spool.Len() == 0 || s.replay(ctx)) {
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
		expiry, stop := s.expiryTimer()
		streamEnd, streamDone, stopStream := s.streamTimer()
		select {
		case <-s.q.ready:
		case <-changed:
		case <-s.windowReady():
		case <-expiry:
		case <-streamEnd:
		case <-streamDone:
		case <-ctx.Done():
		}
		stop()
		stopStream()
	}
}

// sendFresh sends a batch from the queue, giving it one round of
// endpoints; one that no endpoint took goes to the spool.
func (s *Shipper) sendFresh(sendCtx context.Context, b *Batch) {
	switch {
	case sendCtx.Err() != nil:
		s.store(b)
	case s.spool.Len() > 0 && !s.anyHealthy():
		s.store(b) // an outage: straight to disk, behind the backlog
	default:
		ep, err := s.deliver(sendCtx, b, sendOpts{giveUp: true})
		switch {
		case errors.Is(err, errRefused):
			s.refused(err)
		case err != nil:
			s.store(b)
		default:
			s.keepBatch(ep, b)
		}
	}
}

// replay sends the oldest spooled batches, merged, and acknowledges them
// (see sendSpooled). It reports false when a send found no upstream to
// take it or ctx ended: the batches from there on stay in the spool.
func (s *Shipper) replay(ctx context.Context) bool {
	most := spoolMaxRecords
	if s.merge <= 0 {
		most = 1 // NextN takes 0 bytes for no limit
	}
	recs, err := s.spool.NextN(ctx, most, s.merge)
	if err != nil {
		return false
	}
	parts, err := parseRecords(recs)
	if err != nil {
		// The checksum matched, so the record was written this way: a
		// version that this one cannot read. Keeping it would stop the
		// spool for good.
		s.dropRecord.Inc()
		s.warnThrottled("record", "cannot read a spooled batch; dropped it", "err", err, "seq", recs[0].Seq)
		s.doneSpooled(nil, []spooled{{seq: recs[0].Seq, rec: recs[0]}})
		return true
	}
	return s.sendSpooled(ctx, parts, nil) == nil
}

// spooled is a batch read back from the spool, with its sequence number
// and record (whose data its body aliases).
type spooled struct {
	b   *Batch
	seq uint64
	rec spool.Record
}

// sendSpooled delivers parts in one request and acknowledges them (see
// doneSpooled); avoid, when not nil, is the upstream that lost them. A
// refused request of several records does not show which record the
// upstream refused, or whether only their sum was too large: its halves
// are sent again each on its own, down to single records, so that only a
// record refused on its own is dropped and counted, while the others are
// delivered in order. It returns the error of a send that no upstream
// took (deliver with giveUp): the records before it are acknowledged, it
// and the rest stay in the spool.
func (s *Shipper) sendSpooled(ctx context.Context, parts []spooled, avoid *endpoint) error {
	ep, err := s.deliver(ctx, joinBatches(parts), sendOpts{giveUp: true, avoid: avoid, again: avoid != nil})
	switch {
	case err == nil:
		if avoid == nil {
			s.replayed.Add(len(parts))
		}
	case !errors.Is(err, errRefused):
		return err
	case len(parts) == 1:
		s.refused(err, "seq", parts[0].seq)
	default:
		s.replaySplits.Inc()
		s.logThrottled(slog.LevelInfo, "split", "upstream refused a merged replay request; sending its records again in halves",
			"records", len(parts), "err", err)
		mid := len(parts) / 2
		if err := s.sendSpooled(ctx, parts[:mid], avoid); err != nil {
			return err
		}
		return s.sendSpooled(ctx, parts[mid:], avoid)
	}
	s.doneSpooled(ep, parts)
	return nil
}

func (s *Shipper) ack(seq uint64) {
	if err := s.spool.Ack(seq); err != nil && !errors.Is(err, spool.ErrClosed) {
		s.warnThrottled("ack", "cannot record delivery in the spool; the batch may be sent again after a restart", "err", err)
	}
}

// parseRecords decodes the leading records that share query, encoding and
// OwnLabels, so that they can be sent together. It returns an error only
// when the first record cannot be read; a later one that cannot be read
// ends the run, to be met first by the next call.
func parseRecords(recs []spool.Record) ([]spooled, error) {
	first, err := parseRecord(recs[0].Data, recs[0].Created)
	if err != nil {
		return nil, err
	}
	parts := make([]spooled, 1, len(recs))
	parts[0] = spooled{first, recs[0].Seq, recs[0]}
	for _, r := range recs[1:] {
		b, err := parseRecord(r.Data, r.Created)
		if err != nil || b.Query != first.Query || b.Plain != first.Plain || b.Zstd != first.Zstd || b.OwnLabels != first.OwnLabels {
			break
		}
		parts = append(parts, spooled{b, r.Seq, r})
	}
	return parts, nil
}

// joinBatches joins the batches of parts, which share query and encoding,
// into one. Gzip members concatenate into a valid gzip stream, zstd frames
// into a valid zstd stream; plain
// bodies are joined on line boundaries. A single part is returned as it
// is.
func joinBatches(parts []spooled) *Batch {
	if len(parts) == 1 {
		return parts[0].b
	}
	first, size := parts[0].b, 0
	for _, p := range parts {
		size += len(p.b.Body) + 1
	}
	out := &Batch{Created: first.Created, Query: first.Query, Plain: first.Plain, Zstd: first.Zstd, OwnLabels: first.OwnLabels,
		Body: make([]byte, 0, size)}
	for _, p := range parts {
		b := p.b
		out.Body = append(out.Body, b.Body...)
		if b.Plain && len(b.Body) > 0 && b.Body[len(b.Body)-1] != '\n' {
			out.Body = append(out.Body, '\n')
		}
		out.Samples += b.Samples
		out.Created = minTime(out.Created, b.Created)
	}
	return out
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
	s.pk.pack(b)
	created := b.Created
	if created.IsZero() {
		created = s.now()
	}
	s.storeMu.Lock()
	s.record = appendRecord(s.record[:0], b)
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
