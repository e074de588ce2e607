// Package relay is procfleet's relay: it takes import requests from agents
// (or vmagent, or curl), and Prometheus remote write requests (from
// Prometheus, vmagent or Alloy, stored as the import lines of their
// samples), where hosts cannot write to VictoriaMetrics directly, stores
// every accepted body in a write-ahead log on disk before
// it answers, and forwards the log in order with the agent's shipper,
// deleting a body only once an upstream took it and ship.redeliver_window
// passed since: an upstream that becomes unreachable within it gets the
// bodies it took sent, from the log, to the next upstream.
//
// A relay is an agent without generators and with an import API: the
// shipper's spool is the write-ahead log, and the shipper's health checks,
// failover and bandwidth limit apply to forwarding as they do to an agent.
package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/agent/selfmon"
	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/config"
)

// Relay is one relay process. New builds it and starts nothing; Run runs
// it once.
type Relay struct {
	cfg     config.Relay
	log     *slog.Logger // component=relay
	base    *slog.Logger // no component: the WAL and shipper add their own
	set     *metrics.Set // relay_* and process metrics
	shipSet *metrics.Set
	walSet  *metrics.Set
	limiter *limit.Limiter
	tokens  *tokens
	sem     chan struct{} // slots of import.max_concurrent
	mem     *memory       // request bodies, import.max_inflight_bytes
	m       relayMetrics

	ln    net.Listener
	ready chan struct{} // closed once the listener is up
	// recovered is closed once the log is open and forwarding runs; until
	// then imports get 503 and /readyz says why.
	recovered chan struct{}

	mu        sync.Mutex
	wal       *spool.Log    // set once recovered
	shipper   *ship.Shipper // set once recovered
	upstreams []string      // latest, for a shipper not yet built
	creds     map[string]config.UpstreamCredential
	protos    map[string]config.UpstreamProtocol
	strategy  string
	recovErr  error
	stopping  atomic.Bool

	logMu sync.Mutex
	logAt map[string]time.Time

	extraMu sync.Mutex
	extra   []*metrics.Set // AddMetricsSet's
}

// New checks cfg and builds a relay. It opens nothing: the log is
// recovered by Run, after the listener is up, so that /healthz answers
// during a long recovery. logger is the process's base logger, without a
// component attribute: the relay and its parts add their own.
func New(cfg config.Relay, logger *slog.Logger) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The config bounds max_body_bytes; this is the exact figure, from
	// the package that owns the record format.
	if most := ship.MaxStoredBody(maxQueryBytes); int64(cfg.Import.MaxBodyBytes) > most {
		return nil, fmt.Errorf("import.max_body_bytes: %s is not accepted; the write-ahead log stores at most %d bytes of body in a record",
			config.FormatBytes(int64(cfg.Import.MaxBodyBytes)), most)
	}
	n := cfg.Import.MaxConcurrent
	if n == 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	r := &Relay{
		cfg:       cfg,
		log:       logger.With("component", "relay"),
		base:      logger,
		set:       metrics.NewSet(),
		shipSet:   metrics.NewSet(),
		walSet:    metrics.NewSet(),
		sem:       make(chan struct{}, n),
		mem:       newMemory(int64(cfg.Import.MaxInflightBytes)),
		ready:     make(chan struct{}),
		recovered: make(chan struct{}),
		upstreams: cfg.Ship.Upstreams,
		creds:     cfg.Ship.Credentials,
		protos:    cfg.Ship.Protocols,
		strategy:  cfg.Ship.Strategy,
		logAt:     map[string]time.Time{},
	}
	r.limiter = limit.New(cfg.Limit, r.shipSet)
	if cfg.Auth.BearerTokensFile != "" {
		t, err := loadTokens(cfg.Auth.BearerTokensFile, logger, r.set)
		if err != nil {
			return nil, err
		}
		r.tokens = t
	}
	r.m = newRelayMetrics(r.set)
	r.set.NewGauge("procfleet_relay_inflight_bytes", func() float64 { return float64(r.mem.inUse()) })
	selfmon.RegisterProcess(r.set, "/proc")
	return r, nil
}

// Addr returns the listen address once Ready is closed.
func (r *Relay) Addr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// Ready is closed once the listener is up.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// Recovered is closed once the log is recovered and imports are taken.
func (r *Relay) Recovered() <-chan struct{} { return r.recovered }

// Limiter returns the forwarding limiter, for a cluster's budget.
func (r *Relay) Limiter() *limit.Limiter { return r.limiter }

// SetUpstreams sets the upstreams, their credentials and protocols by URL
// (as config.Ship.Credentials and Protocols) and the strategy of
// forwarding, now or, while the log is still being recovered, once it is.
func (r *Relay) SetUpstreams(urls []string, creds map[string]config.UpstreamCredential, protos map[string]config.UpstreamProtocol, strategy string) error {
	for i, u := range urls {
		if err := config.ValidateUpstreamURL(u); err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upstreams, r.creds, r.protos, r.strategy = urls, creds, protos, strategy
	if r.shipper == nil {
		return nil
	}
	if err := r.shipper.SetStrategy(strategy); err != nil {
		return err
	}
	return r.shipper.SetUpstreamConfig(urls, creds, protos)
}

// Shipper returns the forwarding shipper, nil until the log is recovered.
func (r *Relay) Shipper() *ship.Shipper {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shipper
}

// WAL returns the write-ahead log, nil until it is recovered.
func (r *Relay) WAL() *spool.Log {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wal
}

// WritePrometheus writes every self-metric of the relay, those of the
// sets added with AddMetricsSet last.
func (r *Relay) WritePrometheus(w io.Writer) {
	r.set.WritePrometheus(w)
	r.walSet.WritePrometheus(w)
	r.shipSet.WritePrometheus(w)
	r.extraMu.Lock()
	extra := r.extra
	r.extraMu.Unlock()
	for _, s := range extra {
		s.WritePrometheus(w)
	}
}

// AddMetricsSet adds set to the relay's self-metrics: /metrics and the
// series the relay stores for itself write it after the relay's own (a
// cluster member's, say). The relay only reads set. Safe to call at any
// time, also while Run runs.
func (r *Relay) AddMetricsSet(set *metrics.Set) {
	r.extraMu.Lock()
	defer r.extraMu.Unlock()
	r.extra = append(slices.Clip(r.extra), set)
}

// Run serves imports and forwards the log until ctx is done. It listens
// first, then recovers the log (imports get 503 meanwhile), then forwards.
// On stop it stops taking imports, lets requests in flight finish (each
// answered only once stored), stops forwarding (a body in flight stays in
// the log and is sent again after a restart) and closes the log.
func (r *Relay) Run(ctx context.Context) error {
	tlsCfg, err := r.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (listen): %w", r.cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	r.ln = ln
	srv := r.newServer()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	close(r.ready)
	defer r.watchTokens(ctx)()
	r.log.Info("relay listening", "listen", r.Addr(), "tls", tlsCfg != nil, "wal", r.cfg.WAL.Dir)

	start := time.Now()
	wal, err := openWAL(r.cfg.WAL, r.walSet, r.base.With("component", "wal"))
	if err != nil {
		r.mu.Lock()
		r.recovErr = err
		r.mu.Unlock()
		shutdown(srv)
		<-served
		return fmt.Errorf("wal.dir: %w", err)
	}
	r.m.recoverySeconds.Set(time.Since(start).Seconds())
	sh, err := r.newShipper(wal)
	if err != nil {
		shutdown(srv)
		<-served
		return errors.Join(err, wal.Close())
	}
	r.log.Info("relay ready", "recovery", time.Since(start).Round(time.Millisecond), "pending", wal.Len())
	close(r.recovered)

	shipCtx, stopShip := context.WithCancel(context.WithoutCancel(ctx))
	shipDone := make(chan error, 1)
	go func() { shipDone <- sh.Run(shipCtx) }()
	selfDone := make(chan struct{})
	go func() {
		defer close(selfDone)
		r.pushSelf(ctx, wal)
	}()

	<-ctx.Done()
	<-selfDone
	r.stopping.Store(true)
	r.log.Info("relay stopping")
	shutdown(srv)
	<-served
	stopShip()
	shipErr := <-shipDone
	walErr := wal.Close()
	r.log.Info("relay stopped", "pending", wal.Len())
	return errors.Join(shipErr, walErr)
}

func (r *Relay) newServer() *http.Server {
	return &http.Server{
		Handler:           r.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Import requests set their own read deadline when their headers
		// are read (import.read_timeout); this one bounds the others.
		ReadTimeout: r.cfg.Import.ReadTimeout.D() + 10*time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
}

// watchTokens follows the token file, if any, until the returned function
// is called; that function waits for it to stop.
func (r *Relay) watchTokens(ctx context.Context) (stop func()) {
	if r.tokens == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.tokens.watch(ctx, tokenCheckInterval)
	}()
	return func() {
		cancel()
		<-done
	}
}

// openWAL opens and recovers the log; tests hold it up to see the relay
// while it recovers.
var openWAL = spool.OpenLogged

// selfInterval is how often the relay stores its own metrics in its log,
// so that they reach VictoriaMetrics like the agents' do. Tests shorten it.
var selfInterval = 10 * time.Second

// pushSelf stores the relay's self-metrics in its log every selfInterval,
// with instance (the node name) and job labels, until ctx ends.
func (r *Relay) pushSelf(ctx context.Context, wal *spool.Log) {
	node := r.cfg.Node
	if node == "" {
		node, _ = os.Hostname()
	}
	t := time.NewTicker(selfInterval)
	defer t.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			buf.Reset()
			r.WritePrometheus(&buf)
			q := url.Values{}
			q.Add("extra_label", "instance="+node)
			q.Add("extra_label", "job=procfleet")
			q.Set("timestamp", strconv.FormatInt(now.UnixMilli(), 10))
			b := &ship.Chunked{Chunks: [][]byte{buf.Bytes()}, Samples: bytes.Count(buf.Bytes(), []byte("\n")), Query: q.Encode(), Plain: true}
			if err := b.Store(wal, now); err != nil && !errors.Is(err, spool.ErrClosed) {
				r.logThrottled("self", "cannot store the relay's own metrics", "err", err)
			}
		}
	}
}

func shutdown(srv *http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		_ = srv.Close()
	}
}

// newShipper builds the forwarding shipper on the recovered log and
// publishes both.
func (r *Relay) newShipper(wal *spool.Log) (*ship.Shipper, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg.Ship
	cfg.Upstreams, cfg.Credentials, cfg.Protocols, cfg.Strategy = r.upstreams, r.creds, r.protos, r.strategy
	sh, err := ship.New(cfg, ship.Deps{
		Limiter:         r.limiter,
		Logger:          r.base, // ship.New adds component=ship
		Metrics:         r.shipSet,
		Spool:           wal,
		SpoolBatchBytes: int(r.cfg.Forward.BatchBytes),
	})
	if err != nil {
		return nil, err
	}
	r.wal, r.shipper = wal, sh
	return sh, nil
}

// tlsConfig returns the listener's TLS settings, nil for plain http.
func (r *Relay) tlsConfig() (*tls.Config, error) {
	c := r.cfg.TLS
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load tls.cert_file/key_file: %w", err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot use tls.client_ca_file %s: no PEM certificate in it", c.ClientCAFile)
		}
		t.ClientCAs = pool
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}
