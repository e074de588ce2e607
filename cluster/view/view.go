// Package view reads a procfleet cluster as its etcd keys show it: the
// cluster document, the registered agents and relays (members/...) and the
// status keys they write (status/...). It builds one value, Cluster, which
// `procfleet status` prints and the cluster web page (cluster/ui) draws:
// the upstreams with their capacity, the budgets given out there and their
// health as the members' shippers report it, and each member with the
// config revision it applied, its assignment, queue and last error.
//
// Read takes the view once; a Watcher keeps it current from etcd watches.
// Build is the pure part, from a State to a Cluster.
package view

import (
	"cmp"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/config"
)

// Cluster is the cluster as etcd showed it at one revision. It is a plain
// value: safe to read from several goroutines, not to change while they
// read it.
type Cluster struct {
	// Name is the cluster's name.
	Name string `json:"cluster"`
	// ConfigRevision is the revision of the cluster document in etcd, 0
	// when there is none.
	ConfigRevision int64 `json:"config_revision"`
	// ConfigError says why the document at ConfigRevision is not the one
	// the upstreams come from (it is missing or cannot be parsed); empty
	// when it is.
	ConfigError string `json:"config_error,omitempty"`
	// Agents and Relays are the registered members, by node name.
	Agents []Member `json:"agents"`
	Relays []Member `json:"relays"`
	// Upstreams are the endpoints of the cluster document, in its order.
	Upstreams []Upstream `json:"upstreams"`
	// EtcdRevision is the etcd revision the view reflects.
	EtcdRevision int64 `json:"etcd_revision"`
	// Error is set by a Watcher while etcd cannot be read: the view is
	// then the last one it could build.
	Error string `json:"error,omitempty"`
}

// Member is one registered agent or relay, with what its status key says.
type Member struct {
	Kind keys.Kind `json:"kind"`
	Node string    `json:"node"`
	// Address is where the member's gossip listens.
	Address string `json:"address"`
	// HTTP is where its HTTP server listens; empty when unknown.
	HTTP      string            `json:"http"`
	Version   string            `json:"version"`
	Labels    map[string]string `json:"labels,omitempty"`
	StartTime time.Time         `json:"start_time"`
	// Reported is true when the member has written a status key; the
	// fields below are zero until it has.
	Reported       bool  `json:"reported"`
	ConfigRevision int64 `json:"config_revision"`
	// Upstreams are the member's assignment, primary first.
	Upstreams            []string `json:"upstreams"`
	BudgetBytesPerSecond int64    `json:"budget_bytes_per_second"`
	// QueueBatches are an agent's batches in memory and spool, a relay's
	// bodies in its log.
	QueueBatches int    `json:"queue_batches"`
	LastError    string `json:"last_error"`
	// Gossip says why the member's gossip does not run; empty while it
	// does.
	Gossip string `json:"gossip,omitempty"`
	// SavedState is set while the member runs on the state it saved.
	SavedState string `json:"saved_state,omitempty"`
	// Endpoints are the upstreams as the member's shipper sees them.
	Endpoints []cluster.EndpointHealth `json:"endpoints,omitempty"`
	// Down are the upstreams the gossip's votes hold down, as the member
	// counts them.
	Down []string `json:"down,omitempty"`
	// Updated is when the member wrote its status.
	Updated time.Time `json:"updated"`
	// Targets is the number of scrape targets the member owns; nil until
	// members report it in their status.
	Targets *int `json:"targets,omitempty"`
	// ScrapeErrors are the member's discovery and target errors.
	ScrapeErrors []string `json:"scrape_errors,omitempty"`
}

// Upstream is one endpoint of the cluster document, with what the members
// report about it.
type Upstream struct {
	Name                   string `json:"name"`
	URL                    string `json:"url"`
	Relay                  bool   `json:"relay,omitempty"`
	CapacityBytesPerSecond int64  `json:"capacity_bytes_per_second"`
	// Agents and Relays count the members that write here first.
	Agents int `json:"agents"`
	Relays int `json:"relays"`
	// BudgetBytesPerSecond is the sum of their budgets.
	BudgetBytesPerSecond int64 `json:"budget_bytes_per_second"`
	// Healthy is false when most of the members that sent or probed here
	// lately see it unhealthy; true when none has an opinion.
	Healthy bool `json:"healthy"`
	// Reports counts those members, Unhealthy those of them that see it
	// unhealthy.
	Reports   int `json:"reports"`
	Unhealthy int `json:"unhealthy"`
	// DownVotes counts the members whose count of the gossip's votes
	// holds the upstream down.
	DownVotes int `json:"down_votes"`
	// Served names the relay members that serve a relay upstream: their
	// HTTP address is the host and port of its URL, or their node name
	// is its host and the ports agree.
	Served []string `json:"served_by,omitempty"`
}

// Build makes the view of st, a cluster named name.
func Build(name string, st *State) Cluster {
	out := Cluster{
		Name: name, ConfigRevision: st.ConfigRevision, ConfigError: st.ConfigError,
		Agents: []Member{}, Relays: []Member{}, Upstreams: []Upstream{}, EtcdRevision: st.Revision,
	}
	for id, m := range st.Members {
		mem := memberOf(id, m, st.Status)
		if id.Kind == keys.Relay {
			out.Relays = append(out.Relays, mem)
		} else {
			out.Agents = append(out.Agents, mem)
		}
	}
	byName := func(a, b Member) int { return strings.Compare(a.Node, b.Node) }
	slices.SortFunc(out.Agents, byName)
	slices.SortFunc(out.Relays, byName)
	if st.Config != nil {
		for _, e := range st.Config.Endpoints() {
			out.Upstreams = append(out.Upstreams, upstreamOf(e, out.Agents, out.Relays))
		}
	}
	return out
}

func memberOf(id MemberID, m session.Member, status map[string]cluster.Status) Member {
	mem := Member{
		Kind: id.Kind, Node: id.Node, Address: m.Address, HTTP: m.HTTP, Version: m.Version,
		Labels: m.Labels, StartTime: m.StartTime, Upstreams: []string{},
	}
	s, ok := status[id.Node]
	if !ok {
		return mem
	}
	mem.Reported = true
	mem.ConfigRevision = s.ConfigRevision
	if s.Upstreams != nil {
		mem.Upstreams = s.Upstreams
	}
	mem.BudgetBytesPerSecond, mem.QueueBatches, mem.LastError = s.BudgetBytesPerSecond, s.QueueBatches, s.LastError
	mem.Gossip, mem.SavedState, mem.Endpoints, mem.Down, mem.Updated = s.Gossip, s.SavedState, s.Endpoints, s.Down, s.Updated
	mem.Targets, mem.ScrapeErrors = s.Targets, s.ScrapeErrors
	return mem
}

func upstreamOf(e config.Endpoint, agents, relays []Member) Upstream {
	u := Upstream{Name: e.Name, URL: e.URL, Relay: e.Relay, CapacityBytesPerSecond: e.Capacity}
	for i, m := range slices.Concat(agents, relays) {
		if len(m.Upstreams) > 0 && m.Upstreams[0] == e.Name {
			if i < len(agents) {
				u.Agents++
			} else {
				u.Relays++
			}
			u.BudgetBytesPerSecond += m.BudgetBytesPerSecond
		}
		for _, h := range m.Endpoints {
			if h.Recent && SameEndpoint(h.URL, e.URL) {
				u.Reports++
				if !h.Healthy {
					u.Unhealthy++
				}
			}
		}
		if slices.Contains(m.Down, e.Name) {
			u.DownVotes++
		}
	}
	u.Healthy = u.Reports == 0 || 2*u.Unhealthy <= u.Reports
	if e.Relay {
		for _, r := range relays {
			if serves(r, e.URL) {
				u.Served = append(u.Served, r.Node)
			}
		}
	}
	return u
}

// serves reports whether the relay r is the one at url.
func serves(r Member, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || r.HTTP == "" {
		return false
	}
	port := cmp.Or(u.Port(), map[string]string{"https": "443"}[u.Scheme], "80")
	host, rport, err := net.SplitHostPort(r.HTTP)
	if err != nil || rport != port {
		return false
	}
	return u.Hostname() == host || u.Hostname() == r.Node
}

// SameEndpoint compares an endpoint as the shipper labels it (no userinfo,
// no query) with a config URL.
func SameEndpoint(label, url string) bool {
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url = url[:i]
	}
	return label == url || strings.HasSuffix(url, strings.TrimPrefix(strings.TrimPrefix(label, "http://"), "https://"))
}
