package config

import (
	"fmt"
	"net"
)

// Debug configures the agent's debugging surfaces. They are off by default
// and host-local: a cluster document never sets them.
type Debug struct {
	// PprofListen is the address of a separate HTTP server for the Go
	// runtime's profiles (/debug/pprof/). Empty, the default, turns it off.
	// It must be a loopback address unless PprofAllowRemote is set.
	PprofListen string `yaml:"pprof_listen"`
	// PprofAllowRemote accepts a PprofListen that is not a loopback
	// address. Profiles show the agent's memory and cost it CPU, and the
	// server has no authentication. Default false.
	PprofAllowRemote bool `yaml:"pprof_allow_remote"`
}

// Validate checks d; key, such as "debug", prefixes errors. listen is the
// agent's self HTTP address, which pprof_listen may not share.
func (d Debug) Validate(key, listen string) error {
	if d.PprofListen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(d.PprofListen)
	if err != nil {
		return fmt.Errorf("%s.pprof_listen: %q is not accepted; want host:port such as 127.0.0.1:6060, or empty to turn pprof off", key, d.PprofListen)
	}
	if d.PprofListen == listen && port != "0" {
		return fmt.Errorf("%s.pprof_listen: %q is also listen; want an address of its own such as 127.0.0.1:6060", key, d.PprofListen)
	}
	if !d.PprofAllowRemote && !isLoopback(host) {
		return fmt.Errorf("%s.pprof_listen: %q is not a loopback address; profiles expose the agent's memory to anyone who can connect: "+
			"want 127.0.0.1:PORT, [::1]:PORT or localhost:PORT, or set %s.pprof_allow_remote: true (--pprof-allow-remote) to serve them there",
			key, d.PprofListen, key)
	}
	return nil
}

// isLoopback reports whether host names only the loopback interface. An
// empty host is every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
