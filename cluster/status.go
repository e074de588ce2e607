package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/procfleet/procfleet/cluster/session"
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
	// Gossip is empty while the member's gossip runs; otherwise it says
	// why it does not: the member then runs on etcd alone, without quick
	// failure detection or a say on which upstreams are down.
	Gossip string `json:"gossip,omitempty"`
	// SavedState is set while the member runs on the settings it saved on
	// disk, because etcd gave none when it started.
	SavedState string `json:"saved_state,omitempty"`
	// Down are the upstreams the votes of registered members hold down,
	// as this member counts them.
	Down []string `json:"down,omitempty"`
	// RejectedRevision is the newest config revision the member could not
	// apply (LastError says why), while it runs on an older one; 0 when it
	// applied the newest it saw. procfleet config set --wait reads it.
	RejectedRevision int64 `json:"rejected_revision,omitempty"`
	// ScrapeErrors are an agent's errors of scraping: discovery's, while
	// it is the elected member, and targets that cannot be scraped (at
	// most 20, then how many more).
	ScrapeErrors []string `json:"scrape_errors,omitempty"`
	// Targets is how many scrape targets an agent scrapes; nil for a
	// relay.
	Targets *int      `json:"targets,omitempty"`
	Updated time.Time `json:"updated"`
}

// EndpointHealth is one upstream as the member's shipper sees it.
type EndpointHealth struct {
	// URL is the endpoint without userinfo and query.
	URL     string `json:"url"`
	Healthy bool   `json:"healthy"`
	// Recent is true when the member's view of the endpoint is current
	// enough to count as an opinion in the gossip's down rule: the shipper
	// sent there or probed it lately, and, for a healthy endpoint, still
	// sends there (not a fallback behind the endpoint that takes the
	// batches).
	Recent    bool   `json:"recent"`
	LastError string `json:"last_error,omitempty"`
	// Protocol is how the member sends there when not VictoriaMetrics'
	// import: remote_write 1.0 or 2.0, and for a 2.0 upstream that did not
	// take it "remote_write 1.0 (fell back from 2.0: why)".
	Protocol string `json:"protocol,omitempty"`
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
	// Rounded to 1 KiB/s so that small changes do not cause broadcasts.
	m.gossipState.Endpoints, m.gossipState.BytesPerSecond = opinions, rate&^1023
	st := m.gossipState
	m.mu.Unlock()
	m.writeStatus()
	if g, _ := m.gossip.current(); g != nil {
		if err := g.SetLocal(st); err != nil {
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

// maxStatusJitter bounds how long after a change that readers wait for
// (a config revision applied or refused) a member writes its status: each
// member waits a part of it fixed by its node name, so that a fleet
// applying a revision at once does not write to etcd in the same
// millisecond.
const maxStatusJitter = 500 * time.Millisecond

// statusJitter is node's part of maxStatusJitter.
func statusJitter(node string) time.Duration {
	return time.Duration(fnv32(node)%uint32(maxStatusJitter/time.Millisecond)) * time.Millisecond
}

// writeStatus hands the current status to the session, which writes it
// rate-limited (status.interval) and bound to the member's lease.
func (m *Member) writeStatus() { m.sendStatus(false) }

// writeStatusSoon hands the current status to the session to be written
// within the member's jitter, whatever the rate limit: for the changes an
// operator waits for, a config revision applied or refused.
func (m *Member) writeStatusSoon() { m.sendStatus(true) }

func (m *Member) sendStatus(soon bool) {
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
	if soon {
		sess.SetStatusWithin(data, statusJitter(m.cfg.Node))
		return
	}
	sess.SetStatus(data)
}

// Pending returns nil once the member has handed out settings; before,
// why it has none yet (etcd unreachable, no config, ...), for the command
// to report while it waits. It never blocks.
func (m *Member) Pending() error {
	if m.published.Load() {
		return nil
	}
	m.mu.Lock()
	sess, cfgErr, compErr, gotConfig, gotLive := m.sess, m.configErr, m.computeErr, m.gotConfig, m.gotLive
	m.mu.Unlock()
	etcd := strings.Join(m.cfg.Etcd.Endpoints, ",")
	switch {
	case cfgErr != "":
		return errors.New(cfgErr)
	case compErr != "":
		return errors.New(compErr)
	case sess == nil:
		return errors.New("starting")
	}
	info, _ := sess.Info()
	switch {
	case info.Phase != session.Registered && info.Err != nil:
		return fmt.Errorf("cannot reach etcd at %s: %w", etcd, info.Err)
	case !gotConfig && info.Phase == session.Connecting:
		return fmt.Errorf("connecting to etcd at %s", etcd)
	case !gotConfig:
		return fmt.Errorf("no cluster config in etcd at %s (write one with procfleet cluster bootstrap)", m.space.Config())
	case !gotLive:
		return errors.New("waiting for the list of members from etcd")
	}
	return errors.New("computing the settings")
}
