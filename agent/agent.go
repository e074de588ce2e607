// Package agent wires the host agent together: generators on the scheduler
// write lines into pooled buffers, the compressor batches and gzips them,
// and the shipper sends the batches upstream within the bandwidth limit.
// The scraper (agent/scrape) writes the samples of the targets it is given
// (SetTargets) the same way, into batches of their own, which carry the
// targets' job and instance instead of the agent's. It also serves the
// agent's own HTTP endpoints.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/compress"
	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/limit"
	"github.com/procfleet/procfleet/agent/sched"
	"github.com/procfleet/procfleet/agent/scrape"
	"github.com/procfleet/procfleet/agent/selfmon"
	"github.com/procfleet/procfleet/agent/ship"
	"github.com/procfleet/procfleet/agent/spool"
	"github.com/procfleet/procfleet/config"
)

// Agent is one host's agent. New builds it and starts nothing; Run runs it.
type Agent struct {
	cfg     config.Agent
	log     *slog.Logger // component=agent
	base    *slog.Logger // no component: each part adds its own
	sets    map[string]*metrics.Set
	pool    *emit.Pool
	comp    *compress.Compressor
	limiter *limit.Limiter
	shipper *ship.Shipper
	spool   *spool.Log // nil when spool.dir is empty; Run closes it
	sched   *sched.Scheduler
	// The scraper writes into a pool and a compressor of its own: its
	// batches go without the agent's instance and job (Batch.OwnLabels),
	// and a large scrape never waits for the generators' buffers.
	scraper    *scrape.Manager
	scrapeComp *compress.Compressor
	self       *server      // /metrics and /healthz; nil when listen is empty
	pprof      *server      // /debug/pprof/; nil when debug.pprof_listen is empty
	preLn      net.Listener // handed over by UseListener
	ready      chan struct{}
	stopped    chan struct{} // closed when Run stops taking config changes
	applyCh    chan applyRequest
	cluster    *ClusterInfo // for the index page; nil when standalone
}

// New builds an agent from a validated configuration. It returns an error
// for a configuration it cannot run (no upstream, a generator that cannot
// be built). logger is the process's base logger, without a component
// attribute: the agent and each of its parts add their own, so that every
// record carries one.
func New(cfg config.Agent, logger *slog.Logger, opts ...Option) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Ship.Upstreams) == 0 {
		return nil, errors.New("ship.upstreams: empty; want at least one import URL such as http://127.0.0.1:8428/api/v1/import/prometheus")
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cannot get host name, set hostname: %w", err)
		}
		cfg.Hostname = h
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, log: logger.With("component", "agent"), base: logger, sets: map[string]*metrics.Set{},
		ready: make(chan struct{}), stopped: make(chan struct{}), applyCh: make(chan applyRequest)}
	for _, c := range []string{"process", "generator", "compress", "ship", "limit", "scheduler", "spool", "scrape"} {
		a.sets[c] = metrics.NewSet()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := a.addSets(o); err != nil {
		return nil, err
	}
	a.cluster = o.cluster
	if a.cluster != nil && o.clusterPage != "" {
		c := *a.cluster
		c.Page = o.clusterPage
		a.cluster = &c
	}
	// The agent's own CPU and memory come from the real procfs even when the
	// generators read a fixture tree.
	selfmon.RegisterProcess(a.sets["process"], "/proc")
	a.pool = emit.NewPool(cfg.Scheduler.Buffers)
	a.sets["scheduler"].NewGauge(`procfleet_scheduler_buffers_in_use`, func() float64 { return float64(a.pool.InUse()) })
	a.limiter = limit.New(cfg.Limit, a.sets["limit"])
	query := url.Values{}
	query.Add("extra_label", "instance="+cfg.Hostname)
	query.Add("extra_label", "job="+cfg.Job)
	if cfg.Spool.Dir != "" {
		l, err := spool.OpenLogged(cfg.Spool, a.sets["spool"], logger.With("component", "spool"))
		if err != nil {
			return nil, fmt.Errorf("spool.dir: %w", err)
		}
		a.spool = l
	}
	var err error
	a.shipper, err = ship.New(cfg.Ship, ship.Deps{
		Limiter:         a.limiter,
		Logger:          logger, // ship.New adds component=ship
		Metrics:         a.sets["ship"],
		Query:           query,
		Spool:           a.spool,
		SpoolBatchBytes: int(cfg.Compress.TargetBytes),
		Text:            cfg.Compress,
		TextDone:        func(b []byte) { a.comp.PutText(b) },
	})
	if err != nil {
		a.closeSpool()
		return nil, err
	}
	a.comp, err = compress.New(cfg.Compress, a.pool, a.enqueue, a.sets["compress"])
	if err != nil {
		a.closeSpool()
		return nil, err
	}
	// While the shipper streams, it compresses the generators' batches
	// itself, once, into the stream (see ship's text batches).
	a.comp.SetTextWanted(a.shipper.WantsText)
	if a.sched, err = a.newScheduler(cfg); err != nil {
		a.closeSpool()
		return nil, err
	}
	if err := a.newScraper(cfg, logger); err != nil {
		a.closeSpool()
		return nil, err
	}
	return a, nil
}

// scrapeBuffers bounds the scraper's 16 KiB buffers not yet compressed.
const scrapeBuffers = 16

// newScraper builds the scraper, its buffers and its compressor. The
// compressor's metrics go to a set of their own, not exported: their
// names are the generators' compressor's.
func (a *Agent) newScraper(cfg config.Agent, logger *slog.Logger) error {
	pool := emit.NewPool(scrapeBuffers)
	var err error
	a.scrapeComp, err = compress.New(cfg.Compress, pool, a.enqueueScraped, metrics.NewSet())
	if err != nil {
		return err
	}
	source := "credentials: in the agent's config"
	if cfg.ConfigFile != "" {
		source = "credentials: in " + cfg.ConfigFile
	}
	a.scraper, err = scrape.New(scrape.DefaultConfig(), scrape.Deps{
		Pool: pool, Sink: a.scrapeComp,
		Credentials: cfg.Credentials, CredentialSource: source,
		Logger: logger, Metrics: a.sets["scrape"],
	})
	return err
}

// closeSpool closes the spool, if any, and returns the error.
func (a *Agent) closeSpool() error {
	if a.spool == nil {
		return nil
	}
	if err := a.spool.Close(); err != nil {
		return fmt.Errorf("cannot close the spool: %w", err)
	}
	return nil
}

// newScheduler builds a scheduler for the generators of cfg.
func (a *Agent) newScheduler(cfg config.Agent) (*sched.Scheduler, error) {
	jobs, err := a.jobs(cfg)
	if err != nil {
		return nil, err
	}
	return sched.New(cfg.Scheduler.Workers, jobs, sched.Deps{
		Pool:    a.pool,
		Sink:    a.comp,
		Logger:  a.base.With("component", "scheduler"),
		Metrics: a.sets["generator"],
	})
}

func (a *Agent) enqueue(b compress.Batch) {
	a.shipper.Enqueue(&ship.Batch{Body: b.Body, Zstd: b.Zstd, Text: b.Text, Samples: b.Samples, Created: b.Created})
}

func (a *Agent) enqueueScraped(b compress.Batch) {
	a.shipper.Enqueue(&ship.Batch{Body: b.Body, Zstd: b.Zstd, Samples: b.Samples, Created: b.Created, OwnLabels: true})
}

// SetTargets makes targets the scrape targets of the agent: new ones
// start at their next instant, removed ones stop after their scrape in
// flight, and those whose job's scrape settings changed restart (see
// scrape.Manager.Apply). It does not block, and is safe for concurrent
// use before and during Run. An agent with every generator disabled and
// targets set is a dedicated scraper. The host's credentials that jobs
// name are those of the config given to New: a change applies at the next
// start.
func (a *Agent) SetTargets(targets []scrape.Target) { a.scraper.Apply(targets) }

// Targets returns the state of every target the agent scrapes.
func (a *Agent) Targets() []scrape.TargetState { return a.scraper.Targets() }

// Shipper returns the agent's shipper, for run-time changes of upstreams.
func (a *Agent) Shipper() *ship.Shipper { return a.shipper }

// Limiter returns the agent's bandwidth limiter, for run-time budgets.
func (a *Agent) Limiter() *limit.Limiter { return a.limiter }

// Addr returns the address the self HTTP server listens on, once Ready is
// closed; "" when it is off.
func (a *Agent) Addr() string { return a.self.addr() }

// PprofAddr returns the address the pprof server listens on, once Ready is
// closed; "" when it is off (the default).
func (a *Agent) PprofAddr() string { return a.pprof.addr() }

// Ready is closed once Run has started every part.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run runs the agent until ctx is done, then stops in reverse order of
// start: the scheduler finishes its scans, the compressor flushes the last
// batch, the shipper sends what is queued (bounded by ship.drain_timeout)
// and spools the rest, and the HTTP server closes. Run closes the spool;
// an Agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.listen(); err != nil {
		return errors.Join(err, a.closeSpool())
	}
	a.self.serve()
	a.pprof.serve()
	shipCtx, stopShip := context.WithCancel(context.WithoutCancel(ctx))
	compCtx, stopComp := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var shipErr error
	wg.Go(func() { shipErr = a.shipper.Run(shipCtx) })
	compDone := make(chan struct{})
	go func() {
		defer close(compDone)
		_ = a.comp.Run(compCtx)
	}()
	scrapeCompDone := make(chan struct{})
	go func() {
		defer close(scrapeCompDone)
		_ = a.scrapeComp.Run(compCtx)
	}()
	scraperDone := make(chan struct{})
	go func() {
		defer close(scraperDone)
		_ = a.scraper.Run(ctx)
	}()
	a.log.Info("agent started", "hostname", a.cfg.Hostname, "upstreams", a.cfg.Ship.Upstreams, "listen", a.Addr(), "pprof", a.PprofAddr())
	close(a.ready)
	err := a.runScheduler(ctx)
	close(a.stopped)
	<-scraperDone // its scrapes in flight are cancelled with ctx
	a.log.Info("agent stopping: flushing batches")
	stopComp()
	<-compDone
	<-scrapeCompDone
	stopShip()
	wg.Wait()
	spoolErr := a.closeSpool()
	a.self.shutdown()
	a.pprof.shutdown()
	a.log.Info("agent stopped")
	return errors.Join(err, shipErr, spoolErr)
}

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, s := range a.orderedSets() {
			s.WritePrometheus(w)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", a.serveReady)
	mux.HandleFunc("GET /{$}", a.serveIndex) // only /: other paths are 404
	return mux
}

// orderedSets returns the metric sets sorted by component name. Each set
// writes its series sorted by name, so /metrics keeps one order from
// scrape to scrape.
func (a *Agent) orderedSets() []*metrics.Set {
	names := slices.Sorted(maps.Keys(a.sets))
	out := make([]*metrics.Set, len(names))
	for i, n := range names {
		out[i] = a.sets[n]
	}
	return out
}

// listen binds the self and pprof addresses that are set, or neither; the
// self server takes the listener handed over by UseListener instead.
func (a *Agent) listen() error {
	var err error
	switch {
	case a.preLn != nil:
		a.self = &server{srv: newHTTPServer(a.handler()), ln: a.preLn}
	case a.cfg.Listen != "":
		if a.self, err = listen(a.cfg.Listen, "listen", a.handler()); err != nil {
			return err
		}
	}
	if a.cfg.Debug.PprofListen != "" {
		if a.pprof, err = listen(a.cfg.Debug.PprofListen, "debug.pprof_listen, --pprof-listen", pprofHandler()); err != nil {
			a.self.shutdown()
			return err
		}
	}
	return nil
}

// server is one of the agent's HTTP servers; a nil *server is one that is
// off, and its methods do nothing.
type server struct {
	srv *http.Server
	ln  net.Listener
}

// listen binds addr for h; key names the setting in errors.
func listen(addr, key string, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", addr, key, err)
	}
	return &server{srv: newHTTPServer(h), ln: ln}, nil
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

func (s *server) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// serve serves in a goroutine of its own until shutdown.
func (s *server) serve() {
	if s != nil {
		go func() { _ = s.srv.Serve(s.ln) }()
	}
}

// shutdown lets requests in progress finish for up to 2 s, then closes
// the connections left (a 30 s CPU profile, say).
func (s *server) shutdown() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
	_ = s.ln.Close() // when Serve never ran
}
