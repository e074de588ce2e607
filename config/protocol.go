package config

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Upstream protocols of UpstreamProtocol.Protocol.
const (
	// ProtocolImport is VictoriaMetrics' Prometheus text import
	// (POST /api/v1/import/prometheus, gzip), which vmagent and the
	// procfleet relay take too.
	ProtocolImport = "import"
	// ProtocolRemoteWrite is Prometheus' remote write (POST /api/v1/write
	// on Prometheus, Mimir, Thanos, Cortex, VictoriaMetrics, vmagent and
	// the procfleet relay).
	ProtocolRemoteWrite = "remote_write"
)

// RemoteWriteLookback is Prometheus' default query lookback
// (--query.lookback-delta): a series with no sample for that long is
// absent from instant queries. Changed-only emission writes an unchanged
// series again only every full_every cycles, so that period must stay
// below it for series to stay continuous in a remote-write store.
const RemoteWriteLookback = 5 * time.Minute

// UpstreamProtocol is the protocol an upstream is sent in.
type UpstreamProtocol struct {
	// Protocol is import (VictoriaMetrics' text import) or remote_write.
	// Default import.
	Protocol string `yaml:"protocol,omitempty"`
	// RemoteWriteVersion is the remote-write version, 1 or 2, for
	// protocol remote_write. A 2.0 upstream that answers 415, or 2xx
	// without X-Prometheus-Remote-Write-Samples-Written, is sent 1.0 from
	// then on. Default 1.
	RemoteWriteVersion int `yaml:"remote_write_version,omitempty"`
}

// RemoteWrite returns the remote-write version to send in: 0 for the
// import protocol, else 1 or 2.
func (p UpstreamProtocol) RemoteWrite() int {
	if p.Protocol != ProtocolRemoteWrite {
		return 0
	}
	if p.RemoteWriteVersion == 0 {
		return 1
	}
	return p.RemoteWriteVersion
}

// String names the protocol for logs and status: import,
// remote_write 1.0 or remote_write 2.0.
func (p UpstreamProtocol) String() string {
	if v := p.RemoteWrite(); v > 0 {
		return fmt.Sprintf("remote_write %d.0", v)
	}
	return ProtocolImport
}

// Validate checks p; key, such as "upstreams[0]", prefixes errors.
func (p UpstreamProtocol) Validate(key string) error {
	switch p.Protocol {
	case "", ProtocolImport, ProtocolRemoteWrite:
	default:
		return fmt.Errorf("%s.protocol: %q is not accepted; want %s (the default) or %s", key, p.Protocol, ProtocolImport, ProtocolRemoteWrite)
	}
	switch {
	case p.RemoteWriteVersion != 0 && p.RemoteWriteVersion != 1 && p.RemoteWriteVersion != 2:
		return fmt.Errorf("%s.remote_write_version: %d is not accepted; want 1 (the default) or 2", key, p.RemoteWriteVersion)
	case p.RemoteWriteVersion != 0 && p.Protocol != ProtocolRemoteWrite:
		return fmt.Errorf("%s.remote_write_version: %d is set for protocol %s; want protocol: %s with it, or no remote_write_version",
			key, p.RemoteWriteVersion, p.String(), ProtocolRemoteWrite)
	}
	return nil
}

// validateProtocols checks the protocols of a Ship, in URL order so that
// the error is the same on every run; key is the Ship's key.
func validateProtocols(key string, protos map[string]UpstreamProtocol) error {
	for _, u := range slices.Sorted(maps.Keys(protos)) {
		k := fmt.Sprintf("%s.protocols[%q]", key, u)
		if err := ValidateUpstreamURL(u); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if err := protos[u].Validate(k); err != nil {
			return err
		}
	}
	return nil
}

// anyRemoteWrite reports whether some upstream of protos takes remote
// write.
func anyRemoteWrite(protos map[string]UpstreamProtocol) bool {
	for _, p := range protos {
		if p.RemoteWrite() > 0 {
			return true
		}
	}
	return false
}

// validateRefresh checks that, with a remote-write upstream, every
// enabled generator writes each series at least once per
// RemoteWriteLookback: full_every cycles of its interval, below 5m.
func (a Agent) validateRefresh() error {
	if !anyRemoteWrite(a.Ship.Protocols) {
		return nil
	}
	g := a.Generators
	all := append(g.List(), Named{"process", Generator{Enabled: g.Process.Enabled, Interval: g.Process.Interval}})
	for _, n := range all {
		if !n.Enabled {
			continue
		}
		if d := time.Duration(a.FullEvery) * n.Interval.D(); d >= RemoteWriteLookback {
			return fmt.Errorf("full_every: %d cycles of generators.%s.interval %s is %s, not below %s: a remote_write upstream's queries "+
				"(Prometheus' 5m lookback) would lose unchanged series between full refreshes; want full_every * interval below 5m",
				a.FullEvery, n.Name, n.Interval, d, RemoteWriteLookback)
		}
	}
	return nil
}

// validateRefresh checks the refresh of the agents ca sets against the
// upstreams' protocols; key prefixes errors.
func (ca ClusterAgents) validateRefresh(key string, protos map[string]UpstreamProtocol) error {
	a := DefaultAgent()
	ca.applyTo(&a)
	a.Ship.Protocols = protos
	if err := a.validateRefresh(); err != nil {
		return fmt.Errorf("%s.%w", key, err)
	}
	return nil
}
