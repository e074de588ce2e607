package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// waitServer answers on a clustered agent's listen address while the
// member waits for its first settings, so that a probe can tell a process
// that waits (for etcd, for a config) from one that is gone: /healthz
// answers 200, /readyz and every other path 503 with the reason. handOver
// stops it and gives the socket to the agent, which serves on it for the
// rest of the run: the address is bound once, before the member registers.
type waitServer struct {
	ln     *pausableListener
	srv    *http.Server
	served chan struct{}
}

// newWaitServer serves on ln, with why giving the reason /readyz reports.
func newWaitServer(ln net.Listener, why func() error) *waitServer {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		msg := "waiting for the first settings from the cluster"
		if err := why(); err != nil {
			msg += ": " + err.Error()
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
	})
	ws := &waitServer{
		ln:     &pausableListener{Listener: ln},
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		served: make(chan struct{}),
	}
	go func() {
		defer close(ws.served)
		_ = ws.srv.Serve(ws.ln)
	}()
	return ws
}

// handOver stops serving, waiting at most 2s for requests in flight, and
// returns a listener on the same socket, with the connections accepted
// meanwhile, for the agent.
func (ws *waitServer) handOver() net.Listener {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = ws.srv.Shutdown(ctx) // closes ws.ln: pauses it
	<-ws.served
	return ws.ln.resume()
}

// close stops serving and closes the socket.
func (ws *waitServer) close() {
	ws.handOver().Close()
}

// pausableListener is a TCP listener whose Close only stops Accept, so
// that http.Server.Shutdown leaves the socket open for the next server.
type pausableListener struct {
	net.Listener
	paused atomic.Bool

	mu      sync.Mutex
	carried []net.Conn // accepted as Accept was paused
}

// Accept returns the next connection, or net.ErrClosed once paused.
func (l *pausableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if l.paused.Load() {
		if c != nil {
			l.mu.Lock()
			l.carried = append(l.carried, c)
			l.mu.Unlock()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

// Close pauses Accept: a deadline in the past wakes an Accept in progress.
func (l *pausableListener) Close() error {
	l.paused.Store(true)
	if d, ok := l.Listener.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(time.Now())
	}
	return fmt.Errorf("cannot pause a %T", l.Listener)
}

// resume returns the socket as a listener again, which first yields the
// connections accepted while pausing.
func (l *pausableListener) resume() net.Listener {
	if d, ok := l.Listener.(interface{ SetDeadline(time.Time) error }); ok {
		_ = d.SetDeadline(time.Time{})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return &carryListener{Listener: l.Listener, carried: l.carried}
}

// carryListener yields carried connections before the socket's.
type carryListener struct {
	net.Listener
	mu      sync.Mutex
	carried []net.Conn
}

func (l *carryListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.carried) > 0 {
		c := l.carried[0]
		l.carried = l.carried[1:]
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *carryListener) Close() error {
	l.mu.Lock()
	for _, c := range l.carried {
		c.Close()
	}
	l.carried = nil
	l.mu.Unlock()
	return l.Listener.Close()
}
