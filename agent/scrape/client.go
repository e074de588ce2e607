package scrape

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
)

// client is how a job's targets are requested: the HTTP client with the
// TLS settings of its credential, and the header its credential sets.
// It is shared by the targets of jobs with the same credentials, and
// safe for concurrent use.
type client struct {
	http  *http.Client
	creds config.ScrapeCredentials
	pass  *secretFile // basic auth password, nil without
	token *secretFile // bearer token, nil without
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
		cl.pass = &secretFile{path: creds.PasswordFile}
		if _, err := cl.pass.get(); err != nil {
			return nil, fmt.Errorf("basic_auth: %w", err)
		}
	}
	if creds.TokenFile != "" {
		cl.token = &secretFile{path: creds.TokenFile}
		if _, err := cl.token.get(); err != nil {
			return nil, fmt.Errorf("authorization: %w", err)
		}
	}
	if rt == nil {
		tc, err := tlsConfig(creds.TLS)
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
		tok, err := c.token.get()
		req.Header.Set("Authorization", c.creds.AuthType+" "+tok)
		return err
	case c.pass != nil:
		pw, err := c.pass.get()
		req.SetBasicAuth(c.creds.Username, pw)
		return err
	}
	return nil
}

// tlsConfig builds the TLS settings of a credential.
func tlsConfig(c config.ShipTLS) (*tls.Config, error) {
	t := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, // #nosec G402 -- the host's own opt-in
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot use ca_file %s: no PEM certificate in it", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// secretFile is a password or token read from a file, read again when the
// file's modification time or size changes, so that a rotated secret
// applies without a restart. Safe for concurrent use.
type secretFile struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	value string
}

// get returns the current secret; when the file cannot be read any more,
// the last value read and the error.
func (f *secretFile) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return f.value, fmt.Errorf("cannot stat %s: %w", f.path, err)
	}
	if st.ModTime().Equal(f.mod) && st.Size() == f.size && f.value != "" {
		return f.value, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return f.value, fmt.Errorf("cannot read %s: %w", f.path, err)
	}
	f.value = strings.TrimRight(string(b), "\r\n")
	f.mod, f.size = st.ModTime(), st.Size()
	return f.value, nil
}
