package agent

import (
	"fmt"
	"net"
	"net/http"
)

// UseListener makes Run serve the self HTTP endpoints on ln instead of
// listening on the configured listen address: a caller that must know at
// start that the address is free (a clustered agent, before it registers)
// binds it first and hands it over. Call it before Run, which closes ln.
func (a *Agent) UseListener(ln net.Listener) { a.preLn = ln }

// listen returns the listener Run serves on: the one handed over, else a
// new one on the listen address; nil when the self server is off.
func (a *Agent) listen() (net.Listener, error) {
	if a.preLn != nil {
		return a.preLn, nil
	}
	if a.cfg.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (listen): %w", a.cfg.Listen, err)
	}
	return ln, nil
}

// serveReady answers /readyz: 200 once Run has started every part, 503
// before.
func (a *Agent) serveReady(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-a.ready:
		_, _ = w.Write([]byte("ok\n"))
	default:
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}
}
