package ship

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/config"
)

// EndpointState is a snapshot of one upstream, for status reports.
type EndpointState struct {
	// URL is the upstream URL without userinfo and query, as in the
	// endpoint label of the metrics.
	URL string
	// Healthy endpoints take batches; unhealthy ones are only probed.
	Healthy bool
	// ConsecutiveFailures counts failed sends (5xx, network errors) and
	// probes since the last success.
	ConsecutiveFailures int
	// LastError is the last failure or rejection, empty if none yet.
	LastError string
	// LastErrorAt and LastSuccessAt are zero until the event happens.
	LastErrorAt   time.Time
	LastSuccessAt time.Time
	// ThrottledUntil is when a Retry-After from the endpoint ends.
	ThrottledUntil time.Time
	// Protocol is import, remote_write 1.0 or remote_write 2.0, and for a
	// 2.0 upstream that did not take it "remote_write 1.0 (fell back from
	// 2.0: why)".
	Protocol string
	// Unusable says that this host cannot authenticate to the endpoint
	// (LastError says why: its credential is not defined here, or its
	// files cannot be read). It is never sent to nor probed, and, with
	// LastErrorAt zero, says nothing about the endpoint's health.
	Unusable bool
}

// endpoint is one upstream. Fields below mu-comment are guarded by
// Shipper.mu; the rest are fixed after creation or atomic.
type endpoint struct {
	raw    string                    // as configured; identity across SetUpstreams, with cred
	label  string                    // no userinfo, no query
	target string                    // raw plus Deps.Query
	bare   string                    // raw, for batches with OwnLabels
	health string                    // scheme://[userinfo@]host/health
	cred   config.UpstreamCredential // zero when none is named
	proto  config.UpstreamProtocol   // as configured; identity with raw and cred
	rw     atomic.Int32              // remote-write version sent now, 0 for import
	// sender sends to the endpoint: its credential's header and client,
	// or the shipper's own (ship.auth, ship.tls) when it names none.
	sender
	// unusable, when not empty, says why the endpoint is never sent to
	// nor probed: this host cannot authenticate to it. Such an endpoint
	// is never healthy.
	unusable string

	healthy atomic.Bool // read by the gauge without a lock
	probing atomic.Bool // a probe is in flight
	// vm marks an upstream whose answers carry X-Server-Hostname:
	// VictoriaMetrics, which parses a streamed body as it arrives.
	vm    atomic.Bool
	bytes *metrics.Counter
	reqMu sync.Mutex
	reqs  map[string]*metrics.Counter // by status

	// guarded by Shipper.mu
	failures  int
	lastErr   string
	lastErrAt time.Time
	lastOK    time.Time
	notBefore time.Time
	fellBack  string // why a 2.0 upstream is sent 1.0, empty if it is not
}

// parseEndpoint checks raw and derives its URLs; extra is appended to the
// query of the import URL.
func parseEndpoint(raw string, extra url.Values) (*endpoint, error) {
	if err := config.ValidateUpstreamURL(raw); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot parse upstream %q: %w", raw, err)
	}
	lu := *u
	lu.User, lu.RawQuery, lu.Fragment = nil, "", ""
	tu := *u
	tu.Fragment = ""
	if len(extra) > 0 {
		q := tu.Query()
		for k, vs := range extra {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		tu.RawQuery = q.Encode()
	}
	hu := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: "/health"}
	ep := &endpoint{
		raw:    raw,
		label:  lu.String(),
		target: tu.String(),
		bare:   (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String(),
		health: hu.String(),
		reqs:   make(map[string]*metrics.Counter),
	}
	ep.healthy.Store(true)
	return ep, nil
}

// labelValue escapes s for a Prometheus label value.
func labelValue(s string) string {
	if !strings.ContainsAny(s, "\"\\\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// registerEndpoint registers ep's health gauge; its counters are made as
// they are first needed.
func (s *Shipper) registerEndpoint(ep *endpoint) {
	l := labelValue(ep.label)
	s.set.GetOrCreateGauge(`procfleet_ship_endpoint_healthy{endpoint="`+l+`"}`, func() float64 {
		if ep.healthy.Load() {
			return 1
		}
		return 0
	})
}

func (s *Shipper) unregisterEndpoint(ep *endpoint) {
	s.set.UnregisterMetric(`procfleet_ship_endpoint_healthy{endpoint="` + labelValue(ep.label) + `"}`)
}

// countRequest counts one request to ep with status, an HTTP code or
// "error".
func (s *Shipper) countRequest(ep *endpoint, status string) {
	ep.reqMu.Lock()
	c := ep.reqs[status]
	if c == nil {
		c = s.set.GetOrCreateCounter(`procfleet_ship_requests_total{endpoint="` +
			labelValue(ep.label) + `",status="` + status + `"}`)
		ep.reqs[status] = c
	}
	ep.reqMu.Unlock()
	c.Inc()
}

// SetStrategy switches between config.StrategyRoundRobin and
// config.StrategyOrdered for the next batches. Safe for concurrent use.
func (s *Shipper) SetStrategy(strategy string) error {
	if strategy != config.StrategyRoundRobin && strategy != config.StrategyOrdered {
		return fmt.Errorf("ship.strategy: %q is not accepted; want %s or %s", strategy, config.StrategyRoundRobin, config.StrategyOrdered)
	}
	s.mu.Lock()
	s.strategy = strategy
	s.mu.Unlock()
	return nil
}

// SetUpstreams replaces the upstream list and its order, keeping the
// credentials and protocols by URL given last (to New,
// SetUpstreamCredentials or SetUpstreamConfig).
// Endpoints whose URL and credential stay keep their health; new ones
// start healthy. Duplicates are ignored. On an invalid URL nothing
// changes. Safe for concurrent use; a send in flight to a removed endpoint
// completes.
func (s *Shipper) SetUpstreams(urls []string) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.setUpstreams(urls, s.creds, s.protos)
}

// SetUpstreamCredentials is SetUpstreams that also replaces, in the same
// step, the credentials by URL (config.Ship.Credentials): no batch goes to
// a new upstream before its credential applies. An upstream that creds
// names no credential for is sent to with ship.auth and ship.tls; one
// whose credential has a Problem, or whose files cannot be read, is
// unusable: never sent to nor probed, reported by State and logged.
func (s *Shipper) SetUpstreamCredentials(urls []string, creds map[string]config.UpstreamCredential) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.setUpstreams(urls, creds, s.protos)
}

// SetUpstreamConfig is SetUpstreamCredentials that also replaces, in the
// same step, the protocols by URL (config.Ship.Protocols): no batch goes
// to a new upstream in another protocol than its own. An upstream whose
// protocol changed starts afresh, as a new one. An invalid protocol
// changes nothing.
func (s *Shipper) SetUpstreamConfig(urls []string, creds map[string]config.UpstreamCredential, protos map[string]config.UpstreamProtocol) error {
	for i, u := range urls {
		if err := protos[u].Validate(fmt.Sprintf("upstreams[%d]", i)); err != nil {
			return fmt.Errorf("cannot set upstreams: %w", err)
		}
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.setUpstreams(urls, creds, protos)
}

// setUpstreams does SetUpstreamConfig with s.setMu held.
func (s *Shipper) setUpstreams(urls []string, creds map[string]config.UpstreamCredential, protos map[string]config.UpstreamProtocol) error {
	next := make([]*endpoint, 0, len(urls))
	seen := make(map[string]bool, len(urls))
	s.mu.Lock()
	old := make(map[string]*endpoint, len(s.eps))
	for _, ep := range s.eps {
		old[ep.raw] = ep
	}
	s.mu.Unlock()
	var added []*endpoint
	for i, raw := range urls {
		if seen[raw] {
			continue
		}
		seen[raw] = true
		if ep := old[raw]; ep != nil && ep.cred.Equal(creds[raw]) && ep.proto == protos[raw] {
			next = append(next, ep)
			continue
		}
		ep, err := parseEndpoint(raw, s.query)
		if err != nil {
			return fmt.Errorf("cannot set upstreams: [%d]: %w", i, err)
		}
		ep.proto = protos[raw]
		ep.rw.Store(int32(ep.proto.RemoteWrite()))
		next = append(next, ep)
		added = append(added, ep)
	}
	for _, ep := range added {
		s.equip(ep, creds[ep.raw])
		ep.bytes = s.set.GetOrCreateCounter(`procfleet_ship_bytes_total{endpoint="` + labelValue(ep.label) + `"}`)
	}
	s.mu.Lock()
	prev := s.eps
	s.eps = next
	s.creds = creds
	s.protos = protos
	s.next = 0
	s.signalLocked()
	s.mu.Unlock()
	kept := make(map[*endpoint]bool, len(next))
	for _, ep := range next {
		kept[ep] = true
	}
	// Unregistered before the new ones register: an endpoint whose
	// credential changed has the same gauge.
	for _, ep := range prev {
		if !kept[ep] {
			s.unregisterEndpoint(ep)
		}
	}
	for _, ep := range added {
		s.registerEndpoint(ep)
	}
	return nil
}

// equip gives ep, not yet published, its sender for uc: the shipper's own
// when uc names no credential, else the credential's. An endpoint that
// this host cannot authenticate to becomes unusable, and says why.
func (s *Shipper) equip(ep *endpoint, uc config.UpstreamCredential) {
	ep.cred, ep.sender = uc, s.sender
	switch {
	case uc.Name == "" && uc.Problem == "":
		return
	case uc.Problem != "":
		ep.unusable = uc.Problem
	default:
		sd, err := s.senderFor(uc)
		if err == nil {
			ep.sender = sd
			return
		}
		ep.unusable = fmt.Sprintf("upstream %s: credential %q: %v; not sending there", uc.Upstream, uc.Name, err)
	}
	ep.healthy.Store(false)
	ep.lastErr = ep.unusable
	s.logThrottled(slog.LevelWarn, ep.label+" credential", "upstream not usable from this host", "endpoint", ep.label, "err", ep.unusable)
}

// State returns a snapshot of every upstream, in order. Safe for concurrent
// use.
func (s *Shipper) State() []EndpointState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EndpointState, len(s.eps))
	for i, ep := range s.eps {
		out[i] = EndpointState{
			URL:                 ep.label,
			Healthy:             ep.healthy.Load(),
			ConsecutiveFailures: ep.failures,
			LastError:           ep.lastErr,
			LastErrorAt:         ep.lastErrAt,
			LastSuccessAt:       ep.lastOK,
			ThrottledUntil:      ep.notBefore,
			Unusable:            ep.unusable != "",
			Protocol:            ep.protocolState(),
		}
	}
	return out
}

// signalLocked wakes a sender waiting for a healthy endpoint.
func (s *Shipper) signalLocked() {
	close(s.healthCh)
	s.healthCh = make(chan struct{})
}

type pickState int

const (
	picked      pickState = iota
	throttled             // healthy untried endpoints exist, all behind Retry-After
	allTried              // every healthy endpoint failed this round
	noneHealthy           // wait for a probe to bring one back
)

type pick struct {
	state pickState
	ep    *endpoint
	wait  time.Duration   // for throttled
	wake  <-chan struct{} // for noneHealthy: closed when health changes
}

// pick chooses the next healthy endpoint, round robin, that is neither in
// tried nor behind a Retry-After.
func (s *Shipper) pick(tried []*endpoint) pick {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.eps)
	anyHealthy, wait := false, time.Duration(-1)
	start := s.next
	if s.strategy == config.StrategyOrdered {
		start = 0
	}
	for i := range n {
		idx := (start + i) % n
		ep := s.eps[idx]
		if !ep.healthy.Load() {
			continue
		}
		anyHealthy = true
		if contains(tried, ep) {
			continue
		}
		if d := ep.notBefore.Sub(now); d > 0 {
			if wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		s.next = idx + 1
		return pick{state: picked, ep: ep}
	}
	switch {
	case wait >= 0:
		return pick{state: throttled, wait: wait}
	case anyHealthy:
		return pick{state: allTried}
	}
	return pick{state: noneHealthy, wake: s.healthCh}
}

func contains(eps []*endpoint, ep *endpoint) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}

// unhealthy returns the endpoints to probe.
func (s *Shipper) unhealthy() []*endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*endpoint
	for _, ep := range s.eps {
		if !ep.healthy.Load() && ep.unusable == "" {
			out = append(out, ep)
		}
	}
	return out
}

// markSuccess records a delivered batch or a passed probe.
func (s *Shipper) markSuccess(ep *endpoint, how string) {
	s.mu.Lock()
	ep.failures = 0
	ep.lastOK = s.now()
	back := !ep.healthy.Load()
	if back {
		ep.healthy.Store(true)
		s.signalLocked()
	}
	s.mu.Unlock()
	if back {
		// Throttled apart from errors: a flapping endpoint would log
		// twice per probe interval.
		s.logThrottled(slog.LevelInfo, ep.label+" health", "upstream is healthy again", "endpoint", ep.label, "by", how)
	}
}

// markFailure records a failed send or probe; failure says whether it
// counts toward FailuresToUnhealthy. retryAfter > 0 holds sends back.
func (s *Shipper) markFailure(ep *endpoint, err error, failure bool, retryAfter time.Duration) {
	now := s.now()
	s.mu.Lock()
	ep.lastErr = err.Error()
	ep.lastErrAt = now
	if retryAfter > 0 {
		ep.notBefore = now.Add(retryAfter)
	}
	down := false
	if failure {
		ep.failures++
		if ep.healthy.Load() && ep.failures >= s.cfg.FailuresToUnhealthy {
			ep.healthy.Store(false)
			down = true
		}
	}
	failures := ep.failures
	s.mu.Unlock()
	if down {
		s.logThrottled(slog.LevelWarn, ep.label+" health", "upstream marked unhealthy", "endpoint", ep.label,
			"consecutive_failures", failures, "err", err)
	}
}

// markRejected records a 4xx: the endpoint answers, so it stays healthy.
func (s *Shipper) markRejected(ep *endpoint, err error) {
	s.mu.Lock()
	ep.lastErr = err.Error()
	ep.lastErrAt = s.now()
	ep.failures = 0
	s.mu.Unlock()
}
