package ship

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/credfile"
)

// newTransport builds an HTTP transport with the TLS settings c (key, such
// as "ship.tls", names them in errors): connect and TLS handshake bounded by
// to.Connect, response headers by to.Response, and, on Linux, data sent
// but not acknowledged by the upstream's TCP by to.Response too. The send phase is bounded
// per request (see attempt). HTTP/2 is not forced: VictoriaMetrics and
// vmagent speak HTTP/1.1, and HTTP/1.1 keeps the timeouts above exact.
func newTransport(to config.ShipTimeouts, c config.ShipTLS, key string) (*http.Transport, error) {
	tlsCfg, err := credfile.TLS(c, key)
	if err != nil {
		return nil, err
	}
	// Data sent must be acknowledged within the response timeout: the
	// upstream's TCP answers for it (see userTimeout).
	d := &net.Dialer{Timeout: to.Connect.D(), KeepAlive: 30 * time.Second, Control: userTimeout(to.Response.D())}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   to.Connect.D(),
		ResponseHeaderTimeout: to.Response.D(),
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}, nil
}

// newClient wraps rt in the shipper's HTTP client.
func newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		// A redirect would turn the POST into a GET or resend the body
		// elsewhere; an import URL that redirects is a misconfiguration,
		// reported as a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// auth sets the Authorization header of requests.
type auth struct {
	username string
	password *credfile.Secret
	bearer   *credfile.Secret
}

// newAuth reads the credential files once so that a missing file fails New
// (or makes the upstream that names it unusable); key, such as
// "ship.auth", names them in errors.
func newAuth(c config.ShipAuth, key string) (*auth, error) {
	a := &auth{username: c.Username}
	if c.PasswordFile != "" {
		a.password = credfile.NewSecret(c.PasswordFile)
		if _, err := a.password.Get(); err != nil {
			return nil, fmt.Errorf("cannot use %s.password_file: %w", key, err)
		}
	}
	if c.BearerTokenFile != "" {
		a.bearer = credfile.NewSecret(c.BearerTokenFile)
		if _, err := a.bearer.Get(); err != nil {
			return nil, fmt.Errorf("cannot use %s.bearer_token_file: %w", key, err)
		}
	}
	return a, nil
}

// apply sets the header on req. A file that became unreadable keeps its
// last value; the error is returned for a throttled log line.
func (a *auth) apply(req *http.Request) error {
	switch {
	case a.bearer != nil:
		tok, err := a.bearer.Get()
		req.Header.Set("Authorization", "Bearer "+tok)
		return err
	case a.password != nil:
		pw, err := a.password.Get()
		req.SetBasicAuth(a.username, pw)
		return err
	}
	return nil
}

// sender is how requests reach a group of endpoints: the credential's
// header and the HTTP client with its TLS settings. Fixed once built.
type sender struct {
	auth   *auth
	client *http.Client
}

// credSender is a sender built for a named credential, kept while the
// credential stays the same.
type credSender struct {
	cred config.Credential
	sender
}

// CheckCredential builds what sending with c takes (its files read, its
// certificates parsed) and returns the first problem; name is the
// credential's name in the host's credentials. A host checks its
// credentials at start with it, so that a missing file stops the start
// rather than an upstream later.
func CheckCredential(name string, c config.Credential) error {
	_, err := buildSender(name, c, config.DefaultShip().Timeouts, nil)
	return err
}

// buildSender builds the sender of credential name; rt, when not nil,
// replaces the transport (tests).
func buildSender(name string, c config.Credential, to config.ShipTimeouts, rt http.RoundTripper) (sender, error) {
	key := "credentials." + name
	a, err := newAuth(c.ShipAuth, key)
	if err != nil {
		return sender{}, err
	}
	if rt == nil {
		tr, err := newTransport(to, c.TLS, key+".tls")
		if err != nil {
			return sender{}, err
		}
		rt = tr
	}
	return sender{auth: a, client: newClient(rt)}, nil
}

// senderFor returns the sender of uc's credential, building it the first
// time and again when the credential changed. It is called with s.setMu
// held.
func (s *Shipper) senderFor(uc config.UpstreamCredential) (sender, error) {
	if cs, ok := s.senders[uc.Name]; ok && cs.cred.Equal(uc.Credential) {
		return cs.sender, nil
	}
	sd, err := buildSender(uc.Name, uc.Credential, s.cfg.Timeouts, s.rt)
	if err != nil {
		return sender{}, err
	}
	if old, ok := s.senders[uc.Name]; ok {
		closeIdle(old.client)
	}
	s.senders[uc.Name] = &credSender{cred: uc.Credential, sender: sd}
	return sd, nil
}

// closeIdle closes the idle connections of c's transport, if it can.
func closeIdle(c *http.Client) {
	if ci, ok := c.Transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
