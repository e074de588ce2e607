package config

import (
	"strings"
	"testing"
)

func TestShipProtocols(t *testing.T) {
	a, err := ParseAgent([]byte(`
ship:
  upstreams: [http://vm:8428/api/v1/import/prometheus, http://prom:9090/api/v1/write]
  protocols:
    http://prom:9090/api/v1/write: {protocol: remote_write, remote_write_version: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Ship.Protocol("http://prom:9090/api/v1/write"); got.RemoteWrite() != 2 || got.String() != "remote_write 2.0" {
		t.Fatalf("protocol %+v", got)
	}
	if got := a.Ship.Protocol("http://vm:8428/api/v1/import/prometheus"); got.RemoteWrite() != 0 || got.String() != "import" {
		t.Fatalf("protocol %+v", got)
	}
	if (UpstreamProtocol{Protocol: ProtocolRemoteWrite}).RemoteWrite() != 1 {
		t.Fatal("remote_write without a version is not 1.0")
	}

	f := func(doc, want string) {
		t.Helper()
		_, err := ParseAgent([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %v; want %q", doc, err, want)
		}
	}
	f("ship: {protocols: {\"http://p/w\": {protocol: rw}}}\n", `ship.protocols["http://p/w"].protocol: "rw" is not accepted; want import (the default) or remote_write`)
	f("ship: {protocols: {\"http://p/w\": {protocol: remote_write, remote_write_version: 3}}}\n", `ship.protocols["http://p/w"].remote_write_version: 3 is not accepted; want 1 (the default) or 2`)
	f("ship: {protocols: {\"http://p/w\": {remote_write_version: 2}}}\n", `ship.protocols["http://p/w"].remote_write_version: 2 is set for protocol import`)
	f("ship: {protocols: {\"ftp://p/w\": {protocol: remote_write}}}\n", `ship.protocols["ftp://p/w"]: "ftp://p/w" is not accepted`)
	f("ship: {protocols: {\"http://p/w\": {protocol: remote_write, version: 2}}}\n", `unknown key version`)
}

// With a remote-write upstream, every series must be written again
// within Prometheus' 5-minute lookback: full_every cycles of each
// enabled generator's interval below 5m.
func TestRemoteWriteRefreshBelowLookback(t *testing.T) {
	const rw = "ship: {protocols: {\"http://p/w\": {protocol: remote_write}}}\n"
	if _, err := ParseAgent([]byte(rw)); err != nil {
		t.Fatalf("defaults (full_every 10, intervals up to 10s): %v", err)
	}
	_, err := ParseAgent([]byte(rw + "full_every: 30\n"))
	if want := "full_every: 30 cycles of generators.self.interval 10s is 5m0s, not below 5m0s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want %q", err, want)
	}
	if _, err := ParseAgent([]byte("full_every: 30\n")); err != nil {
		t.Fatalf("import only: %v", err)
	}
	if _, err := ParseAgent([]byte(rw + "full_every: 30\ngenerators: {self: {enabled: false}}\n")); err != nil {
		t.Fatalf("the 10s generator disabled, 30 s of 1s cycles: %v", err)
	}
}

func TestClusterUpstreamProtocol(t *testing.T) {
	c := mustParseCluster(t, `
upstreams:
  - {name: vm, url: "http://vm:8428/api/v1/import/prometheus", capacity: 10MiB/s}
  - {name: prom, url: "http://prom:9090/api/v1/write", capacity: 10MiB/s, protocol: remote_write, remote_write_version: 2}
`)
	a, err := c.AgentConfig("n1", nil, DefaultAgent())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Ship.Protocols) != 1 || a.Ship.Protocols["http://prom:9090/api/v1/write"].RemoteWrite() != 2 {
		t.Fatalf("protocols %+v", a.Ship.Protocols)
	}
	_, err = ParseCluster([]byte(`
upstreams:
  - {name: vm, url: "http://vm:8428/api/v1/import/prometheus", capacity: 10MiB/s}
  - {name: prom, url: "http://prom:9090/api/v1/write", capacity: 10MiB/s, protocol: remote-write}
`))
	if want := `upstreams[1].protocol: "remote-write" is not accepted`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want %q", err, want)
	}
	// The full refresh of the cluster's agents is checked against it too,
	// in the document and per agent.
	_, err = ParseCluster([]byte(`
upstreams:
  - {name: prom, url: "http://prom:9090/api/v1/write", capacity: 10MiB/s, protocol: remote_write}
overrides:
  - match: {nodes: [n1]}
    agents: {full_every: 100}
`))
	if want := "overrides[0].agents.full_every: 100 cycles"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want %q", err, want)
	}
	c.Agents.FullEvery = 60
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "agents.full_every: 60 cycles") {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := c.AgentConfig("n1", nil, DefaultAgent()); err == nil || !strings.Contains(err.Error(), "full_every: 60 cycles") {
		t.Fatalf("full_every 60 with a remote-write upstream: %v", err)
	}
}
