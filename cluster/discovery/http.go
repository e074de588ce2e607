package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/credfile"
	"github.com/procfleet/procfleet/prom/labels"
)

// httpSource is one http_sd_config: a GET of its URL returning a JSON list
// of target groups, as Prometheus' http_sd. A fetch that fails (transport,
// status, content type, body, bounds) keeps the last good groups.
type httpSource struct {
	cfg  config.HTTPSDConfig
	deps Deps

	last   []Group
	sc     config.ScrapeCredentials // of the fetch under way
	tlsCfg config.ShipTLS           // of client
	client *http.Client
}

// jsonContentType is the Content-Type Prometheus' http_sd accepts.
var jsonContentType = regexp.MustCompile(`^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`)

func newHTTPSource(cfg config.HTTPSDConfig, deps Deps) *httpSource {
	return &httpSource{cfg: cfg, deps: deps}
}

func (s *httpSource) key() string             { return sourceKey("http", s.cfg) }
func (s *httpSource) interval() time.Duration { return s.cfg.RefreshInterval.D() }
func (s *httpSource) where() string           { return s.cfg.URL }

func (s *httpSource) refresh(ctx context.Context) ([]Group, bool, error) {
	groups, err := s.fetch(ctx)
	if err != nil {
		return s.last, false, err
	}
	changed := !groupsEqual(groups, s.last)
	s.last = groups
	return groups, changed, nil
}

func (s *httpSource) fetch(ctx context.Context) ([]Group, error) {
	req, err := s.request(ctx)
	if err != nil {
		return nil, err
	}
	timeout := s.deps.Config.FetchTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	groups, err := s.do(req.WithContext(ctx))
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("not done within %v: %w", timeout, err)
	}
	return groups, err
}

func (s *httpSource) do(req *http.Request) ([]Group, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	// Not drained: a hostile body is not read past the bound.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server returned HTTP status %s; want 200 OK", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !jsonContentType.MatchString(strings.TrimSpace(ct)) {
		return nil, fmt.Errorf("unsupported content type %q; want application/json", ct)
	}
	b := newBudget(s.deps.Config)
	return parseJSON(limitReader(resp.Body, s.deps.Config.MaxBytes), labels.Label{Name: labelURL, Value: s.cfg.URL}, b)
}

// request builds the GET, with the credentials the config names resolved
// against the host's, and the client that sends it.
func (s *httpSource) request(ctx context.Context) (*http.Request, error) {
	creds, from := s.deps.Credentials()
	sc, err := s.cfg.ScrapeAuth.Resolve(creds, from)
	if err != nil {
		return nil, fmt.Errorf("not fetched: %w", err)
	}
	u, err := url.Parse(s.cfg.URL)
	if err != nil {
		return nil, err
	}
	if !sc.Allows(u.Host) {
		return nil, fmt.Errorf("not fetched: a credential it names may not be sent to %s, which is not in the credential's hosts (%s)", u.Host, from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, http.NoBody)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "procfleet")
	req.Header.Set("X-Prometheus-Refresh-Interval-Seconds", strconv.FormatFloat(s.interval().Seconds(), 'f', -1, 64))
	if err := setAuth(req, sc); err != nil {
		return nil, fmt.Errorf("not fetched: %w", err)
	}
	if err := s.ensureClient(sc); err != nil {
		return nil, fmt.Errorf("not fetched: %w", err)
	}
	s.sc = sc
	return req, nil
}

// setAuth sets basic auth or the Authorization header from the files of
// the credentials, read at each fetch so that rotated secrets apply.
func setAuth(req *http.Request, sc config.ScrapeCredentials) error {
	read := func(key, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("cannot read %s: %w", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	switch {
	case sc.PasswordFile != "":
		pw, err := read("password_file", sc.PasswordFile)
		if err != nil {
			return err
		}
		req.SetBasicAuth(sc.Username, pw)
	case sc.TokenFile != "":
		tok, err := read("bearer_token_file", sc.TokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", sc.AuthType+" "+tok)
	}
	return nil
}

// ensureClient builds the HTTP client for the TLS settings of sc, again
// when they changed. A redirect may not carry credentials to a host they
// are not allowed for.
func (s *httpSource) ensureClient(sc config.ScrapeCredentials) error {
	if s.client != nil && s.tlsCfg == sc.TLS {
		return nil
	}
	rt := s.deps.Transport
	if rt == nil {
		tc, err := credfile.TLS(sc.TLS, "")
		if err != nil {
			return err
		}
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		rt = &http.Transport{
			Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext, TLSClientConfig: tc,
			TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second,
		}
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	s.tlsCfg = sc.TLS
	s.client = &http.Client{Transport: rt, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.Header.Get("Authorization") != "" && !s.sc.Allows(req.URL.Host) {
			return fmt.Errorf("redirected to %s, which a credential it names may not be sent to", req.URL.Host)
		}
		return nil
	}}
	return nil
}

// close releases the source's idle connections.
func (s *httpSource) close() {
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}
