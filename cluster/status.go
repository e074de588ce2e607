package cluster

import (
	"encoding/json"
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
	URL       string `json:"url"`
	Healthy   bool   `json:"healthy"`
	LastError string `json:"last_error,omitempty"`
}

// ReportShipper records what the member's shipper sees: queued batches and
// endpoint health. The status is written with the next rate-limited write.
func (m *Member) ReportShipper(queue int, endpoints []EndpointHealth) {
	m.mu.Lock()
	m.status.QueueBatches = queue
	m.status.Endpoints = endpoints
	m.mu.Unlock()
	m.writeStatus()
}

// writeStatus hands the current status to the session, which writes it
// rate-limited and bound to the member's lease.
func (m *Member) writeStatus() {
	m.mu.Lock()
	st := m.status
	st.LastError = m.lastError
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
