// Package ui serves the cluster page: one web page that draws a procfleet
// cluster as the ring sees it (upstreams with their capacity and the
// budgets given out there, the agents and relays grouped under the
// upstream they write to first, health as the members report it, the
// config revision each member applied, queues and last errors), kept
// current from etcd watches (cluster/view) and pushed to the page with
// server-sent events. The page's HTML, CSS and JavaScript are embedded in
// the binary; it loads nothing from anywhere else.
//
// Routes: / the page, /static/ its assets, /api/view the current view as
// JSON, /events the views as server-sent events (event "view", one JSON
// document each, the current one first).
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/view"
)

//go:embed assets
var assets embed.FS

// Config describes the page's server.
type Config struct {
	// Cluster is the cluster's name: keys under /procfleet/<Cluster>/.
	// Required.
	Cluster string
	// Listen is where the page is served (host:port). Default
	// 127.0.0.1:9480: the page shows the cluster's layout and errors to
	// whoever reaches it, so it stays on loopback unless told.
	Listen string
	// Watch tunes the etcd watches. Default: view.DefaultWatcherConfig
	// with Interval 500ms (a page need not redraw more often; a change
	// still shows well within 2 s).
	Watch view.WatcherConfig
	// Heartbeat is how often an idle event stream gets a comment line, so
	// that proxies and browsers keep it open. Default 15s.
	Heartbeat time.Duration
}

// DefaultConfig returns the defaults; Cluster is still to be set.
func DefaultConfig() Config {
	w := view.DefaultWatcherConfig()
	w.Interval = 500 * time.Millisecond
	return Config{Listen: "127.0.0.1:9480", Watch: w, Heartbeat: 15 * time.Second}
}

// Validate checks c.
func (c Config) Validate() error {
	if err := keys.ValidateCluster(c.Cluster); err != nil {
		return fmt.Errorf("ui: cluster: %w", err)
	}
	if c.Heartbeat < time.Second {
		return fmt.Errorf("ui: heartbeat %v is not accepted; want at least 1s", c.Heartbeat)
	}
	return c.Watch.Validate()
}

// Server serves the page of one cluster. New starts nothing; Run or Serve
// runs it. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	watcher *view.Watcher
	static  http.Handler

	mu      sync.Mutex
	current []byte        // the latest view as JSON; nil before the first
	seq     uint64        // counts the views published
	changed chan struct{} // closed when current changes, then replaced
}

// New prepares the server of cfg.Cluster's page, reading etcd through
// cli, which the caller closes after Run returns.
func New(cfg Config, cli *clientv3.Client, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	space, err := keys.New(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	w, err := view.NewWatcher(cfg.Watch, cli, space, log)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: log, watcher: w, static: http.FileServerFS(sub), changed: make(chan struct{})}, nil
}

// Run listens on cfg.Listen and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for the cluster page: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the page on ln and follows the cluster in etcd until ctx
// ends, then closes ln and the open event streams and returns once every
// goroutine it started has; it returns nil after ctx ended, or why the
// server failed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx }, // ends the event streams
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.watcher.Run(ctx, s.publish) })
	served := make(chan error, 1)
	wg.Go(func() { served <- srv.Serve(ln) })
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("cluster page: %w", err)
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = serr
	}
	_ = srv.Close()
	wg.Wait()
	return err
}

// page is what the page gets: the view and the server's clock, against
// which it shows how old each status is.
type page struct {
	Now  time.Time    `json:"now"`
	View view.Cluster `json:"view"`
}

// publish takes a view from the watcher: it never blocks.
func (s *Server) publish(v view.Cluster) {
	data, err := json.Marshal(page{Now: time.Now().UTC(), View: v})
	if err != nil {
		s.log.Error("cannot encode the cluster view", "err", err)
		return
	}
	s.mu.Lock()
	s.current = data
	s.seq++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// latest returns the current view's JSON (nil before the first), its
// number and a channel closed when it changes.
func (s *Server) latest() ([]byte, uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, s.seq, s.changed
}

// Handler returns the page's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.static))
	mux.HandleFunc("GET /api/view", s.serveView)
	mux.HandleFunc("GET /events", s.serveEvents)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing but this server's own assets and events: no script,
		// font or stylesheet from elsewhere, no inline code.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) serveView(w http.ResponseWriter, r *http.Request) {
	data, _, changed := s.latest()
	if data == nil {
		select {
		case <-changed:
			data, _, _ = s.latest()
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			http.Error(w, "no view of the cluster yet: etcd has not answered", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// serveEvents streams each new view as an event "view", the current one
// first, until the client goes or the server stops. A client that reads
// slowly skips views: it gets the latest when it is ready.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The browser reconnects after 2 s when the stream breaks.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var sent uint64
	for {
		data, seq, changed := s.latest()
		if seq != sent {
			if _, err := fmt.Fprintf(w, "event: view\ndata: %s\n\n", data); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			sent = seq
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
