package scrape

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/credfile"
)

// client is how a job's targets are requested: the HTTP client with the
// TLS settings of its credential, and the header its credential sets.
// It is shared by the targets of jobs with the same credentials, and
// safe for concurrent use.
type client struct {
	http  *http.Client
	creds config.ScrapeCredentials
	pass  *credfile.Secret // basic auth password, nil without
	token *credfile.Secret // bearer token, nil without
}

// clients builds and keeps clients by credentials. Safe for concurrent use.
type clients struct {
	rt http.RoundTripper // Deps.Transport, nil for transports of our own

	mu sync.Mutex
	m  map[string]*client
}

// get returns the client for creds, building it the first time.
func (c *clients) get(creds config.ScrapeCredentials) (*client, error) {
	key := fmt.Sprintf("%#v", creds)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[key]; ok {
		return cl, nil
	}
	cl, err := newClient(creds, c.rt)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*client{}
	}
	c.m[key] = cl
	return cl, nil
}

// closeIdle closes the idle connections of every client.
func (c *clients) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.m {
		cl.http.CloseIdleConnections()
	}
}

func newClient(creds config.ScrapeCredentials, rt http.RoundTripper) (*client, error) {
	cl := &client{creds: creds}
	if creds.PasswordFile != "" {
		cl.pass = credfile.NewSecret(creds.PasswordFile)
		if _, err := cl.pass.Get(); err != nil {
			return nil, fmt.Errorf("basic_auth: %w", err)
		}
	}
	if creds.TokenFile != "" {
		cl.token = credfile.NewSecret(creds.TokenFile)
		if _, err := cl.token.Get(); err != nil {
			return nil, fmt.Errorf("authorization: %w", err)
		}
	}
	if rt == nil {
		tc, err := credfile.TLS(creds.TLS, "")
		if err != nil {
			return nil, fmt.Errorf("tls_config: %w", err)
		}
		rt = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     5 * time.Minute,
			// A scrape request is a few hundred bytes; a connection is
			// kept per target, so the default 4 KiB cost 3 MiB per
			// thousand targets for nothing.
			WriteBufferSize: 1 << 10,
			// Accept-Encoding is set on each request, so that the body is
			// inflated here, within the body limit.
			DisableCompression: true,
		}
	}
	cl.http = &http.Client{Transport: rt}
	return cl, nil
}

// authorize sets the request's Authorization header. A file that became
// unreadable keeps its last value; the error says so.
func (c *client) authorize(req *http.Request) error {
	switch {
	case c.token != nil:
		tok, err := c.token.Get()
		req.Header.Set("Authorization", c.creds.AuthType+" "+tok)
		return err
	case c.pass != nil:
		pw, err := c.pass.Get()
		req.SetBasicAuth(c.creds.Username, pw)
		return err
	}
	return nil
}
