package agent

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves the Go runtime's profiles under /debug/pprof/. It is
// served on a listener of its own (debug.pprof_listen), never on the self
// HTTP address, which a DaemonSet binds to the node's address.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
