// Package ship holds the shipper: it sends gzip-compressed batches of
// Prometheus text lines to upstream import URLs (VictoriaMetrics, vmagent,
// a procfleet relay), round robin over the healthy ones. An upstream whose
// protocol is remote_write (config.Ship.Protocols) is sent each batch
// converted to a remote-write 1.0 or 2.0 request, with the answers that
// protocol gives (see remotewrite.go); the rules below are those of the
// import protocol.
//
// Per batch attempt the rules are:
//   - 2xx: delivered.
//   - 429: busy. The endpoint stays healthy and is not sent to before its
//     Retry-After (seconds or HTTP date, capped at Retry.MaxBackoff; a
//     backoff delay when absent); another endpoint may take the batch.
//   - 400, 413, 415 and 422: the body itself is refused. The batch is
//     dropped and counted (reason="rejected_4xx"), never retried; the
//     endpoint answered, so it stays healthy.
//   - 5xx, other 4xx (401, 403 and 404 are misconfiguration that a retry
//     may outlive), other codes, network errors and timeouts: a failure. The batch
//     fails over at once to the next healthy endpoint not yet tried for
//     it; once all were tried it waits a backoff (full jitter between
//     Retry.MinBackoff and MinBackoff*2^round, capped at MaxBackoff) and
//     starts a new round. A 503's Retry-After also holds the endpoint back.
//
// FailuresToUnhealthy failures in a row make an endpoint unhealthy. Each
// ProbeInterval every unhealthy endpoint is probed with GET /health on its
// host (VictoriaMetrics answers 200 "OK"); any answer but 5xx or 429 makes
// it healthy again. Probes are separate requests, so that no batch waits on
// a dead endpoint's timeouts. While no endpoint is healthy, the sender
// sleeps until a probe succeeds (or a backoff passes) and makes no request.
//
// # Spool
//
// With Deps.Spool, nothing is dropped for want of an upstream: a batch that
// every endpoint failed in one round, or that arrives while no endpoint is
// healthy, or that the full memory queue pushes out, is written to the spool
// instead, and so is every batch still queued when a graceful stop reaches
// its drain deadline. The sender replays the spool, oldest first, whenever
// the memory queue is empty: fresh batches go first, so that dashboards
// show the present while the backlog fills in behind, and both share the
// limiter, so that a backlog never exceeds the budget. Consecutive spooled
// batches with the same query and encoding are sent together, up to
// Deps.SpoolBatchBytes, and a record is acknowledged (deleted) only once
// an upstream took it or refused its body. An upstream that refuses such a
// merged request (400, 413, 415, 422) names no record: the request's
// halves are sent again, each on its own, down to single records, so that
// only a record refused on its own is dropped (counted with
// reason="rejected_4xx", one per record) and the others are delivered;
// procfleet_ship_replay_splits_total counts the refused requests split so.
// The relay feeds its write-ahead log to a shipper this way without
// calling Enqueue at all.
//
// # Redelivery
//
// With Config.RedeliverWindow above 0, what each upstream acknowledged
// within the window (and Config.RedeliverMaxBytes) is kept: batches from
// memory as they are, spooled records held in the spool and acknowledged
// only once they leave the window. When that upstream becomes
// unreachable (refused, reset, timed out, closed without an answer, an
// empty 5xx), what it kept is sent again before anything else, to the
// other upstreams first, and counted
// (procfleet_ship_redelivered_batches_total); an upstream that answers,
// even with an error, lost nothing. See redeliver.go.
package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/config"
)

// Batch is one request body.
type Batch struct {
	// Body is Prometheus text exposition format, gzip-compressed unless
	// Plain or Zstd says otherwise.
	Body []byte
	// Samples is the number of lines in Body, for accounting.
	Samples int
	// Created is when the batch's oldest line was written.
	Created time.Time
	// Query holds URL-encoded query arguments for this batch alone, added
	// after the upstream's own and Deps.Query; the relay keeps those of
	// each import request (extra_label, timestamp).
	Query string
	// Plain marks a body that is not compressed.
	Plain bool
	// Zstd marks a zstd-compressed body (compress.encoding zstd), sent
	// with Content-Encoding zstd.
	Zstd bool
	// Text marks the compressor's plain text, made while WantsText held:
	// a stream takes it as it is, anything else compresses it first (gzip
	// at Deps.TextLevel). Plain bodies are sent as they are.
	Text bool
	// OwnLabels marks a body whose lines carry their own instance and job
	// labels (a scraper's: the targets'). Deps.Query is not added to its
	// requests, since VictoriaMetrics' extra_label would override those
	// labels; the upstream's own query and Query are.
	OwnLabels bool

	// single keeps the batch out of streams: it was in one that failed,
	// and is sent again on its own.
	single bool

	// conv identifies the batch to the shipper's remote-write conversion,
	// which keeps the last one for retries; 0 until first converted.
	conv uint64
}

// Deps are the shipper's collaborators.
type Deps struct {
	// Limiter paces all sends; nil means no limit.
	Limiter *limit.Limiter
	// Logger receives the shipper's log lines, with component=ship added.
	// Nil discards them.
	Logger *slog.Logger
	// Metrics receives procfleet_ship_* metrics; nil uses a private set.
	// It must not already hold a shipper's metrics.
	Metrics *metrics.Set
	// Query holds extra query arguments added to every upstream URL, such
	// as extra_label=instance=HOST&extra_label=job=procfleet.
	Query url.Values
	// Transport replaces the HTTP transport built from the config (its
	// timeouts and TLS settings then do not apply). For tests.
	Transport http.RoundTripper
	// Now replaces time.Now for timestamps and Retry-After dates. For tests.
	Now func() time.Time
	// Spool, when set, takes the batches no upstream takes and is replayed
	// from (see the package documentation). The shipper reads, appends and
	// acknowledges; the caller opens and closes it, after Run returned.
	Spool *spool.Log
	// SpoolBatchBytes bounds the bodies of spooled batches sent together in
	// one request. 0 sends them one by one.
	SpoolBatchBytes int
	// Text says how text batches not streamed are compressed: as the
	// compressor's config (compress.encoding and compress.level; the
	// zero value is gzip at Go's default level).
	Text config.Compress
	// TextDone, when set, takes the body of a text batch back once the
	// shipper is done with it (compress.Compressor.PutText).
	TextDone func([]byte)
}

// Shipper sends batches upstream. Enqueue, SetUpstreams, State and
// QueueLen are safe for concurrent use, before, during and after Run.
type Shipper struct {
	cfg     config.Ship
	limiter *limit.Limiter
	log     *slog.Logger
	set     *metrics.Set
	query   url.Values
	now     func() time.Time
	rt      http.RoundTripper // Deps.Transport
	sender  sender            // for upstreams without a credential: ship.auth, ship.tls
	conv    rwConv            // batches into remote-write bodies
	q       *queue
	spool   *spool.Log
	merge   int
	running atomic.Bool
	storeMu sync.Mutex
	record  []byte // record buffer of store, guarded by storeMu
	logs    throttle

	// setMu serialises changes of the upstream list; it guards creds and
	// senders, and is taken before mu.
	setMu   sync.Mutex
	creds   map[string]config.UpstreamCredential // by URL, as last set
	protos  map[string]config.UpstreamProtocol   // by URL, as last set
	senders map[string]*credSender               // by credential name

	mu       sync.Mutex
	eps      []*endpoint
	strategy string        // config.Strategy*, guarded by mu
	sent     atomic.Uint64 // request body bytes sent, all endpoints
	next     int           // round robin position
	healthCh chan struct{} // closed and replaced when health or the list changes

	// win keeps what upstreams acknowledged for ship.redeliver_window;
	// nil when that is 0.
	win *window
	// heldTo and ackedTo are the last spooled record held and
	// acknowledged; the sender's alone.
	heldTo, ackedTo uint64
	// st is the open stream and its buffers (ship.stream_for); the
	// sender's alone.
	st streamState
	// textOK says text batches are welcome (see WantsText); pk compresses
	// those that are not streamed.
	textOK atomic.Bool
	pk     packer

	retries     *metrics.Counter
	redelivered *metrics.Counter
	dropQueue   *metrics.Counter
	dropReject  *metrics.Counter
	dropDrain   *metrics.Counter
	sendSeconds *metrics.Histogram

	spooled       *metrics.Counter
	replayed      *metrics.Counter
	dropSpoolFull *metrics.Counter
	dropSpoolErr  *metrics.Counter
	dropRecord    *metrics.Counter
	replaySplits  *metrics.Counter

	streamsOpened    *metrics.Counter
	streamsDelivered *metrics.Counter
	streamsFailed    *metrics.Counter
	streamSegments   *metrics.Counter
	streamResent     *metrics.Counter
}

// New checks cfg and builds a shipper for its upstreams. It starts nothing.
func New(cfg config.Ship, deps Deps) (*Shipper, error) {
	if err := cfg.Validate("ship"); err != nil {
		return nil, err
	}
	s := &Shipper{
		cfg:      cfg,
		strategy: cfg.Strategy,
		limiter:  deps.Limiter,
		log:      deps.Logger,
		set:      deps.Metrics,
		query:    deps.Query,
		now:      deps.Now,
		rt:       deps.Transport,
		senders:  make(map[string]*credSender),
		q:        newQueue(cfg.QueueBatches, int64(cfg.QueueBytes)),
		spool:    deps.Spool,
		merge:    deps.SpoolBatchBytes,
		healthCh: make(chan struct{}),
		pk:       packer{cfg: deps.Text, done: deps.TextDone},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "ship")
	if s.set == nil {
		s.set = metrics.NewSet()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.logs = throttle{every: 10 * time.Second, now: s.now}
	rt := deps.Transport
	if rt == nil {
		tr, err := newTransport(cfg.Timeouts, cfg.TLS, "ship.tls")
		if err != nil {
			return nil, err
		}
		rt = tr
	}
	a, err := newAuth(cfg.Auth, "ship.auth")
	if err != nil {
		return nil, err
	}
	s.sender = sender{auth: a, client: newClient(rt)}
	s.registerMetrics()
	if cfg.RedeliverWindow > 0 {
		s.win = newWindow(cfg.RedeliverWindow.D(), int64(cfg.RedeliverMaxBytes), s.set)
	}
	if err := s.SetUpstreamConfig(cfg.Upstreams, cfg.Credentials, cfg.Protocols); err != nil {
		return nil, err
	}
	return s, nil
}

// closeIdle closes the idle connections of every client.
func (s *Shipper) closeIdle() {
	closeIdle(s.sender.client)
	s.setMu.Lock()
	defer s.setMu.Unlock()
	for _, cs := range s.senders {
		closeIdle(cs.client)
	}
}

func (s *Shipper) registerMetrics() {
	s.retries = s.set.NewCounter("procfleet_ship_retries_total")
	s.redelivered = s.set.NewCounter("procfleet_ship_redelivered_batches_total")
	s.dropQueue = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="queue_full"}`)
	s.dropReject = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="rejected_4xx"}`)
	s.dropDrain = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="drain_timeout"}`)
	s.sendSeconds = s.set.NewHistogram("procfleet_ship_send_seconds")
	s.set.NewGauge("procfleet_ship_queue_batches", func() float64 { return float64(s.q.len()) })
	s.set.NewGauge("procfleet_ship_queue_bytes", func() float64 { return float64(s.q.size()) })
	s.spooled = s.set.NewCounter("procfleet_ship_spooled_batches_total")
	s.replayed = s.set.NewCounter("procfleet_ship_replayed_batches_total")
	s.dropSpoolFull = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="spool_full"}`)
	s.dropSpoolErr = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="spool_error"}`)
	s.dropRecord = s.set.NewCounter(`procfleet_ship_dropped_batches_total{reason="unreadable_record"}`)
	s.replaySplits = s.set.NewCounter("procfleet_ship_replay_splits_total")
	s.streamsOpened = s.set.NewCounter("procfleet_ship_streams_total")
	s.streamsDelivered = s.set.NewCounter(`procfleet_ship_streams_ended_total{result="delivered"}`)
	s.streamsFailed = s.set.NewCounter(`procfleet_ship_streams_ended_total{result="failed"}`)
	s.streamSegments = s.set.NewCounter("procfleet_ship_stream_segments_total")
	s.streamResent = s.set.NewCounter("procfleet_ship_stream_resent_batches_total")
}

// Enqueue queues b for sending. When the queue holds QueueBatches
// batches, or b would take it past QueueBytes, the oldest are written to
// the spool, or without one dropped and counted (reason="queue_full");
// Enqueue blocks only for that write. The shipper owns b afterwards.
func (s *Shipper) Enqueue(b *Batch) {
	if b == nil {
		return
	}
	if b.Text && s.q.len() > 0 {
		s.pk.pack(b) // the sender is behind: it will not stream this one now
	}
	for _, old := range s.q.push(b) {
		if s.spool != nil {
			s.store(old)
			continue
		}
		s.dropQueue.Inc()
		s.warnThrottled("queue", "send queue full; dropped the oldest batch",
			"queue_batches", s.cfg.QueueBatches, "queue_bytes", s.cfg.QueueBytes)
	}
}

// SentBytes returns the request body bytes sent so far, to all endpoints,
// whatever the answer. Safe for concurrent use.
func (s *Shipper) SentBytes() uint64 { return s.sent.Load() }

// QueueLen returns the number of queued batches, not counting the one
// being sent.
func (s *Shipper) QueueLen() int { return s.q.len() }

// SpoolLen returns the number of spooled batches not yet delivered, 0
// without a spool.
func (s *Shipper) SpoolLen() int {
	if s.spool == nil {
		return 0
	}
	return s.spool.Len()
}

// Run sends queued batches until ctx is done, then keeps sending the ones
// still queued for at most DrainTimeout, and returns after every goroutine
// it started has exited. Batches left undelivered at the drain deadline are
// written to the spool, or without one dropped and counted
// (reason="drain_timeout") and reported in the error. Run may be called
// once.
func (s *Shipper) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("cannot run the shipper twice")
	}
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	senderDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.probeLoop(sendCtx) })
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-senderDone:
			return
		}
		t := time.NewTimer(s.cfg.DrainTimeout.D())
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-senderDone:
		}
	})
	lost := s.sendLoop(ctx, sendCtx)
	close(senderDone)
	cancel()
	wg.Wait()
	s.closeIdle()
	lost += s.q.clear() + len(s.st.again)
	s.st.again = nil
	if lost > 0 {
		s.dropDrain.Add(lost)
		return fmt.Errorf("cannot deliver %d batches within ship.drain_timeout %s", lost, s.cfg.DrainTimeout)
	}
	return nil
}

// sendLoop delivers batches one at a time. After ctx is done it empties
// the queue under sendCtx. It returns the number of batches it gave up on.
func (s *Shipper) sendLoop(ctx, sendCtx context.Context) int {
	if s.spool != nil {
		s.spoolLoop(ctx, sendCtx)
		return 0
	}
	for {
		s.expire()
		if s.st.cur != nil && (ctx.Err() != nil || s.streamOver()) {
			s.closeStream(sendCtx)
		}
		s.keepAlive(sendCtx)
		b := s.nextBatch()
		if b == nil {
			if s.pending() && sendCtx.Err() == nil {
				s.redeliverPending(sendCtx, false)
				continue
			}
			if ctx.Err() != nil {
				return 0
			}
			expiry, stop := s.expiryTimer()
			streamEnd, streamDone, stopStream := s.streamTimer()
			select {
			case <-s.q.ready:
			case <-s.windowReady():
			case <-expiry:
			case <-streamEnd:
			case <-streamDone:
			case <-streamDone:
			case <-ctx.Done():
			}
			stop()
			stopStream()
			continue
		}
		if ctx.Err() == nil && s.offer(sendCtx, b) {
			continue
		}
		ep, err := s.deliver(sendCtx, b, sendOpts{})
		switch {
		case errors.Is(err, errRefused):
			s.refused(err)
		case err != nil:
			return 1
		default:
			s.keepBatch(ep, b)
		}
	}
}

// refused counts a batch that an upstream refused, which is dropped, and
// logs the upstream's answer (err, from deliver), throttled. args add
// key-value pairs to the log line.
func (s *Shipper) refused(err error, args ...any) {
	s.dropReject.Inc()
	s.warnThrottled("refused", "upstream refused a batch; dropped it", append([]any{"err", err}, args...)...)
}

// sleep waits for d, ctx or wake (which may be nil).
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-wake:
	}
}

// probeLoop probes the unhealthy endpoints every ProbeInterval, each probe
// on its own goroutine so that a stalled endpoint (whose probe runs into
// its timeouts) delays no other; an endpoint has at most one probe in
// flight. It returns after its probes have.
func (s *Shipper) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ProbeInterval.D())
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ep := range s.unhealthy() {
			if !ep.probing.CompareAndSwap(false, true) {
				continue
			}
			wg.Go(func() {
				defer ep.probing.Store(false)
				s.probe(ctx, ep)
			})
		}
	}
}
