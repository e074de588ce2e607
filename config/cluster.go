package config

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// clusterRef is the reference file of the cluster document, named by
// unknown-key errors.
const clusterRef = "deploy/cluster.example.yaml"

// Cluster is the cluster configuration document, stored in etcd at
// /procfleet/<cluster>/config. Every key is listed with its unit and default
// in deploy/cluster.example.yaml. A Cluster is a plain value: safe to read
// from several goroutines, not to change while they read it.
type Cluster struct {
	// Upstreams are the endpoints the ring places agents and relays on. At
	// least one, and at least one that is not a relay.
	Upstreams []Upstream `yaml:"upstreams"`
	// Ring tunes the placement of agents on the upstreams.
	Ring Ring `yaml:"ring"`
	// Agents are the settings applied to every agent.
	Agents ClusterAgents `yaml:"agents"`
	// Overrides change Agents for the agents they match, in order. Default none.
	Overrides []Override `yaml:"overrides"`
	// Status rate-limits the members' status keys.
	Status Status `yaml:"status"`
	// ScrapeConfigs are the scrape jobs the members run (see
	// ScrapeConfig). Default none.
	ScrapeConfigs ScrapeConfigs `yaml:"scrape_configs,omitempty"`
}

// Upstream is one endpoint of the ring.
type Upstream struct {
	// Name identifies the upstream in assignments and status: 1 to 63 of
	// a-z, 0-9, '-', '_' and '.', unique in the document. Required.
	Name string `yaml:"name"`
	// URL is the import URL (VictoriaMetrics, vmagent or a relay). Required.
	URL string `yaml:"url"`
	// Capacity is the bandwidth the upstream takes, shared by the agents
	// (and relays) that write there first. Required, positive.
	Capacity ByteRate `yaml:"capacity"`
	// Relay says the upstream is a procfleet relay (its URL is a relay's
	// import API). Relays are never assigned relay upstreams, so data
	// never loops between relays; at least one upstream must not be a
	// relay. Default false.
	Relay bool `yaml:"relay"`
	// Credential names the credential agents and relays send to this
	// upstream with: a key of credentials in each host's own file
	// (agent.yaml, relay.yaml), which holds the files. A host that does not
	// define it never sends there and says so in its status. Default:
	// agents.ship.credential.
	Credential string `yaml:"credential,omitempty"`
	// Protocol is import (VictoriaMetrics' import API, the default) or
	// remote_write, as UpstreamProtocol.Protocol.
	Protocol string `yaml:"protocol,omitempty"`
	// RemoteWriteVersion is 1 (the default) or 2 for protocol
	// remote_write, as UpstreamProtocol.RemoteWriteVersion.
	RemoteWriteVersion int `yaml:"remote_write_version,omitempty"`
}

// UpstreamProtocol returns the protocol u is sent in.
func (u Upstream) UpstreamProtocol() UpstreamProtocol {
	return UpstreamProtocol{Protocol: u.Protocol, RemoteWriteVersion: u.RemoteWriteVersion}
}

// Ring tunes the consistent-hash ring with bounded loads that places agents
// on upstreams.
type Ring struct {
	// Fallbacks is how many upstreams follow the first in each agent's
	// order: 0 to one less than the number of upstreams. Default 1, or 0
	// for a document with one upstream (ParseCluster).
	Fallbacks int `yaml:"fallbacks"`
	// Partitions is the number of slots agents hash into; slots, not agents,
	// are spread over the upstreams. More spread agents more evenly and cost
	// more to compute. At least the number of upstreams, at most 1048576.
	// Default 1021 (a prime).
	Partitions int `yaml:"partitions"`
	// Replicas is the number of points each upstream has on the hash ring,
	// 2 to 1000. Default 20.
	Replicas int `yaml:"replicas"`
	// LoadFactor bounds the partitions of one upstream to LoadFactor times
	// the average: more than 1 (so that the bound can always be met), at
	// most 10. Lower evens the load, higher moves fewer agents when
	// upstreams come and go. Default 1.2.
	LoadFactor float64 `yaml:"load_factor"`
}

// Status configures the status keys the members write.
type Status struct {
	// Interval is the shortest time between two writes of a member's status
	// key, 1s to 10m. Default 10s.
	Interval Duration `yaml:"interval"`
}

// ClusterAgents are the agent settings that the cluster sets for every
// agent: the keys of the agent document (Agent) that mean the same on every
// host. Host-local keys (hostname, listen, procfs_root, sysfs_root, spool, debug,
// credentials, ship.auth, ship.tls) stay in the agent's own file;
// ship.upstreams, ship.strategy and limit come from the ring.
type ClusterAgents struct {
	// Job is the job label on every sample. Default "procfleet".
	Job string `yaml:"job"`
	// FullEvery is as Agent.FullEvery. Default 10.
	FullEvery int `yaml:"full_every"`
	// Generators is as Agent.Generators.
	Generators Generators `yaml:"generators"`
	// Scheduler is as Agent.Scheduler.
	Scheduler Scheduler `yaml:"scheduler"`
	// Compress is as Agent.Compress.
	Compress Compress `yaml:"compress"`
	// Ship is Agent.Ship without upstreams.
	Ship ClusterShip `yaml:"ship"`
	// Log is as Agent.Log.
	Log Log `yaml:"log"`
}

// ClusterShip is Ship without Upstreams and Strategy, which the ring
// assigns, and without Auth and TLS, which are host-local. Every other
// field is as in Ship, with the same default.
type ClusterShip struct {
	Timeouts            ShipTimeouts `yaml:"timeouts"`
	Retry               ShipRetry    `yaml:"retry"`
	ProbeInterval       Duration     `yaml:"probe_interval"`
	FailuresToUnhealthy int          `yaml:"failures_to_unhealthy"`
	QueueBatches        int          `yaml:"queue_batches"`
	QueueBytes          ByteSize     `yaml:"queue_bytes"`
	DrainTimeout        Duration     `yaml:"drain_timeout"`
	RedeliverWindow     Duration     `yaml:"redeliver_window"`
	RedeliverMaxBytes   ByteSize     `yaml:"redeliver_max_bytes"`
	StreamFor           Duration     `yaml:"stream_for"`
	StreamEncoding      string       `yaml:"stream_encoding"`
	// Credential names the host credential for the upstreams that name
	// none (see Upstream.Credential); overrides may change it. Empty: such
	// upstreams are sent to with the host's own ship.auth and ship.tls.
	// Default none.
	Credential string `yaml:"credential,omitempty"`
	// Auth and TLS take no value: credentials and TLS settings come from
	// the host only (see Credential). Their empty blocks, which cluster
	// bootstrap and the reference file used to write, are still read, so
	// that such documents stay valid; any value is refused.
	Auth hostLocal `yaml:"auth,omitempty"`
	TLS  hostLocal `yaml:"tls,omitempty"`
}

// Override changes the agent settings of the agents it matches.
type Override struct {
	// Match selects the agents. Required.
	Match OverrideMatch `yaml:"match"`
	// Agents holds the keys to change, in the shape of ClusterAgents. It is
	// kept as written so that only the keys present change anything: an
	// override that sets generators.stat.interval leaves
	// generators.stat.enabled as it was. Required, not empty.
	Agents yaml.Node `yaml:"agents,omitempty"`
}

// OverrideMatch selects agents by node name, by the labels they register
// with, or both. An agent matches when its node is one of Nodes (if Nodes is
// set) and it has every label of Labels with the same value (if Labels is
// set). At least one of the two is required.
type OverrideMatch struct {
	// Nodes are node names; any one matches.
	Nodes []string `yaml:"nodes,omitempty"`
	// Labels must all be present on the agent with these values.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// Endpoint is an upstream as the ring takes it.
type Endpoint struct {
	Name string
	URL  string
	// Capacity is in bytes per second.
	Capacity int64
	// Relay is as Upstream.Relay.
	Relay bool
}

// DefaultCluster returns the cluster defaults. It has no upstreams, so it
// does not validate until some are added.
func DefaultCluster() Cluster {
	return Cluster{
		Ring:   Ring{Fallbacks: 1, Partitions: 1021, Replicas: 20, LoadFactor: 1.2},
		Agents: clusterAgentsOf(DefaultAgent()),
		Status: Status{Interval: Duration(10 * time.Second)},
	}
}

// fallbacksUnset stands for a ring.fallbacks the document does not set,
// while it is decoded: no document sets it, being far out of range.
const fallbacksUnset = math.MinInt32

// DefaultFallbacks is ring.fallbacks' default for a document with
// upstreams upstreams: 1, or 0 when there is only one, so that the default
// fits every document it can default.
func DefaultFallbacks(upstreams int) int {
	return min(1, max(upstreams-1, 0))
}

// ParseCluster decodes a cluster document over the defaults and validates
// it. Unknown keys are errors, inside overrides too. A document that does
// not set ring.fallbacks gets DefaultFallbacks of its upstreams.
func ParseCluster(data []byte) (Cluster, error) {
	if err := checkHostLocal(data); err != nil {
		return Cluster{}, err
	}
	c := DefaultCluster()
	c.Ring.Fallbacks = fallbacksUnset
	if err := decodeStrictRef(data, &c, clusterRef); err != nil {
		return Cluster{}, err
	}
	if c.Ring.Fallbacks == fallbacksUnset {
		c.Ring.Fallbacks = DefaultFallbacks(len(c.Upstreams))
	}
	if len(c.Overrides) == 0 {
		c.Overrides = nil // "overrides: []" is the default, not a different document
	}
	if err := c.Validate(); err != nil {
		return Cluster{}, err
	}
	return c, nil
}

// LoadClusterFile reads and validates the cluster document at path. Errors
// name the file, and the line or key.
func LoadClusterFile(path string) (Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Cluster{}, fmt.Errorf("cannot read cluster config: %w", err)
	}
	c, err := ParseCluster(data)
	if err != nil {
		return Cluster{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// MarshalCluster writes c as YAML that ParseCluster reads back to c.
func MarshalCluster(c Cluster) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("cannot encode cluster config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot encode cluster config: %w", err)
	}
	return buf.Bytes(), nil
}

// Validate checks the whole document and returns the first problem found,
// naming its key. Each override is checked applied alone over Agents;
// AgentConfig checks the combination that applies to one agent.
func (c Cluster) Validate() error {
	if err := validateUpstreams(c.Upstreams); err != nil {
		return err
	}
	if err := c.Ring.Validate("ring", len(c.Upstreams)); err != nil {
		return err
	}
	if err := c.Agents.Validate("agents"); err != nil {
		return err
	}
	if err := c.Agents.validateRefresh("agents", c.upstreamProtocols()); err != nil {
		return err
	}
	for i, o := range c.Overrides {
		if err := o.Validate(fmt.Sprintf("overrides[%d]", i), c.Agents); err != nil {
			return err
		}
		eff := c.Agents
		if o.apply(&eff, "") == nil {
			if err := eff.validateRefresh(fmt.Sprintf("overrides[%d].agents", i), c.upstreamProtocols()); err != nil {
				return err
			}
		}
	}
	if iv := c.Status.Interval.D(); iv < time.Second || iv > 10*time.Minute {
		return fmt.Errorf("status.interval: %s is not accepted; want 1s to 10m", c.Status.Interval)
	}
	return c.ScrapeConfigs.Validate("scrape_configs")
}

var upstreamName = lazyRegexp(`^[a-z0-9._-]{1,63}$`)

func validateUpstreams(us []Upstream) error {
	if len(us) == 0 {
		return fmt.Errorf("upstreams: empty; want at least one {name, url, capacity}")
	}
	names := make(map[string]int, len(us))
	urls := make(map[string]int, len(us))
	direct := 0
	for i, u := range us {
		if !u.Relay {
			direct++
		}
		if !upstreamName().MatchString(u.Name) {
			return fmt.Errorf("upstreams[%d].name: %q is not accepted; want 1 to 63 of a-z, 0-9, '-', '_' and '.'", i, u.Name)
		}
		if u.Credential != "" {
			if err := ValidateCredentialName(u.Credential); err != nil {
				return fmt.Errorf("upstreams[%d].credential: %w", i, err)
			}
		}
		if j, dup := names[u.Name]; dup {
			return fmt.Errorf("upstreams[%d].name: %q is also the name of upstreams[%d]; want unique names", i, u.Name, j)
		}
		names[u.Name] = i
		if err := ValidateUpstreamURL(u.URL); err != nil {
			return fmt.Errorf("upstreams[%d].url: %w", i, err)
		}
		if j, dup := urls[u.URL]; dup {
			return fmt.Errorf("upstreams[%d].url: %q is also the url of upstreams[%d]; want each endpoint once", i, u.URL, j)
		}
		urls[u.URL] = i
		if err := u.UpstreamProtocol().Validate(fmt.Sprintf("upstreams[%d]", i)); err != nil {
			return err
		}
		if u.Capacity <= 0 {
			return fmt.Errorf("upstreams[%d].capacity: %s is not accepted; want a positive rate such as 10MiB/s", i, FormatBytes(int64(u.Capacity))+"/s")
		}
	}
	if direct == 0 {
		return fmt.Errorf("upstreams: all %d have relay: true, which leaves relays nowhere to forward; want at least one that is not a relay (VictoriaMetrics or vmagent)", len(us))
	}
	return nil
}

// Validate checks r for a ring of upstreams endpoints; key prefixes errors.
func (r Ring) Validate(key string, upstreams int) error {
	if r.Fallbacks < 0 || (upstreams > 0 && r.Fallbacks >= upstreams) {
		return fmt.Errorf("%s.fallbacks: %d is not accepted; want 0 to %d (one less than the %d upstreams)", key, r.Fallbacks, max(upstreams-1, 0), upstreams)
	}
	if r.Partitions < max(upstreams, 1) || r.Partitions > 1<<20 {
		return fmt.Errorf("%s.partitions: %d is not accepted; want %d (the number of upstreams) to 1048576, such as 1021", key, r.Partitions, max(upstreams, 1))
	}
	if r.Replicas < 2 || r.Replicas > 1000 {
		return fmt.Errorf("%s.replicas: %d is not accepted; want 2 to 1000", key, r.Replicas)
	}
	if !(r.LoadFactor > 1 && r.LoadFactor <= 10) {
		return fmt.Errorf("%s.load_factor: %g is not accepted; want more than 1 and at most 10, such as 1.2", key, r.LoadFactor)
	}
	return nil
}

// Validate checks ca as the agent settings it gives; key, such as "agents",
// prefixes errors.
func (ca ClusterAgents) Validate(key string) error {
	if ca.Ship.Credential != "" {
		if err := ValidateCredentialName(ca.Ship.Credential); err != nil {
			return fmt.Errorf("%s.ship.credential: %w", key, err)
		}
	}
	a := DefaultAgent()
	ca.applyTo(&a)
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%s.%w", key, err)
	}
	return nil
}

// clusterAgentsOf returns the cluster-wide settings of a.
func clusterAgentsOf(a Agent) ClusterAgents {
	s := a.Ship
	return ClusterAgents{
		Job: a.Job, FullEvery: a.FullEvery, Generators: a.Generators,
		Scheduler: a.Scheduler, Compress: a.Compress, Log: a.Log,
		Ship: ClusterShip{
			Timeouts: s.Timeouts, Retry: s.Retry, ProbeInterval: s.ProbeInterval,
			FailuresToUnhealthy: s.FailuresToUnhealthy, QueueBatches: s.QueueBatches, QueueBytes: s.QueueBytes,
			DrainTimeout: s.DrainTimeout, RedeliverWindow: s.RedeliverWindow,
			RedeliverMaxBytes: s.RedeliverMaxBytes, StreamFor: s.StreamFor,
			StreamEncoding: s.StreamEncoding,
		},
	}
}

// applyTo sets every key of ca in a and leaves the others as they are.
// ship.credential is no key of a: AgentConfig resolves it.
func (ca ClusterAgents) applyTo(a *Agent) {
	a.Job, a.FullEvery, a.Generators = ca.Job, ca.FullEvery, ca.Generators
	a.Scheduler, a.Compress, a.Log = ca.Scheduler, ca.Compress, ca.Log
	s, d := ca.Ship, &a.Ship
	d.Timeouts, d.Retry, d.ProbeInterval = s.Timeouts, s.Retry, s.ProbeInterval
	d.FailuresToUnhealthy, d.QueueBatches, d.DrainTimeout = s.FailuresToUnhealthy, s.QueueBatches, s.DrainTimeout
	d.RedeliverWindow, d.RedeliverMaxBytes, d.QueueBytes = s.RedeliverWindow, s.RedeliverMaxBytes, s.QueueBytes
	d.StreamFor, d.StreamEncoding = s.StreamFor, s.StreamEncoding
}

// UpstreamNames returns the names of the upstreams, in document order.
func (c Cluster) UpstreamNames() []string {
	names := make([]string, len(c.Upstreams))
	for i, u := range c.Upstreams {
		names[i] = u.Name
	}
	return names
}

// Endpoints returns the upstreams as the ring takes them, in document order.
func (c Cluster) Endpoints() []Endpoint {
	eps := make([]Endpoint, len(c.Upstreams))
	for i, u := range c.Upstreams {
		eps[i] = Endpoint{Name: u.Name, URL: u.URL, Capacity: int64(u.Capacity), Relay: u.Relay}
	}
	return eps
}

// Endpoint returns the upstream called name.
func (c Cluster) Endpoint(name string) (Endpoint, bool) {
	for _, u := range c.Upstreams {
		if u.Name == name {
			return Endpoint{Name: u.Name, URL: u.URL, Capacity: int64(u.Capacity), Relay: u.Relay}, true
		}
	}
	return Endpoint{}, false
}
