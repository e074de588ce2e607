package cluster

import (
	"encoding/json"
	"net/url"

	"github.com/procfleet/procfleet/cluster/gossip"
	"time"
)

// Status is what a member reports about itself under status/<node>, for
// `procfleet status`. It is written at most every status interval.
type Status struct {
	Node                 string           `json:"node"`
	Kind                 string           `json:"kind"`
	ConfigRevision       int64            `json:"config_revision"`
	Upstreams            []string         `json:"upstreams"`
	BudgetBytesPerSecond int64            `json:"budget_bytes_per_second"`
	QueueBatches         int              `json:"queue_batches"`
	Endpoints            []EndpointHealth `json:"endpoints,omitempty"`
	LastError            string           `json:"last_error"`
	Updated              time.Time        `json:"updated"`
}

// EndpointHealth is one upstream as the member's shipper sees it.
type EndpointHealth struct {
	// URL is the endpoint without userinfo and query.
	URL     string `json:"url"`
	Healthy bool   `json:"healthy"`
	// Recent is true when the shipper sent or probed there lately: only
	// recent views count as opinions in the gossip's down rule.
	Recent    bool   `json:"recent"`
	LastError string `json:"last_error,omitempty"`
}

// ReportShipper records what the member's shipper sees: queued batches,
// endpoint health and the bytes it has sent so far (a counter). The status
// is written with the next rate-limited write, and the health opinions and
// send rate go to the gossip at once.
func (m *Member) ReportShipper(queue int, endpoints []EndpointHealth, sentBytes uint64) {
	now := time.Now()
	m.mu.Lock()
	m.status.QueueBatches = queue
	m.status.Endpoints = endpoints
	var rate int64
	if !m.sentAt.IsZero() && now.After(m.sentAt) && sentBytes >= m.sent {
		rate = int64(float64(sentBytes-m.sent) / now.Sub(m.sentAt).Seconds())
	}
	m.sent, m.sentAt = sentBytes, now
	opinions := map[string]bool{}
	for _, e := range endpoints {
		if name, ok := m.names[e.URL]; ok && e.Recent {
			opinions[name] = e.Healthy
		}
	}
	g := m.gossip
	m.mu.Unlock()
	m.writeStatus()
	if g != nil {
		// Rounded to 1 KiB/s so that small changes do not cause broadcasts.
		if err := g.SetLocal(gossip.State{Endpoints: opinions, BytesPerSecond: rate &^ 1023}); err != nil {
			m.log.Warn("cannot gossip the shipper's view", "err", err)
		}
	}
}

// endpointLabel is url without userinfo and query, as the shipper labels
// endpoints.
func endpointLabel(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// writeStatus hands the current status to the session, which writes it
// rate-limited and bound to the member's lease.
func (m *Member) writeStatus() {
	m.mu.Lock()
	st := m.status
	st.LastError = m.configErr
	if st.LastError == "" {
		st.LastError = m.computeErr
	}
	if st.LastError == "" {
		st.LastError = m.credErr
	}
	st.Updated = time.Now().UTC()
	sess := m.sess
	m.mu.Unlock()
	if sess == nil {
		return
	}
	data, err := json.Marshal(st)
	if err != nil {
		return
	}
	sess.SetStatus(data)
}
