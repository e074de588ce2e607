package agent

import (
	"net"
	"net/http"
)

// UseListener makes Run serve the self HTTP endpoints on ln instead of
// listening on the configured listen address: a caller that must know at
// start that the address is free (a clustered agent, before it registers)
// binds it first and hands it over. Call it before Run, which closes ln.
func (a *Agent) UseListener(ln net.Listener) { a.preLn = ln }

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
