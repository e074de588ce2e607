package ship

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

// newTransport builds the HTTP transport for cfg: connect and TLS handshake
// bounded by Timeouts.Connect, response headers by Timeouts.Response. The
// send phase is bounded per request (see attempt). HTTP/2 is not forced:
// VictoriaMetrics and vmagent speak HTTP/1.1, and HTTP/1.1 keeps the
// timeouts above exact.
func newTransport(cfg config.Ship) (*http.Transport, error) {
	tlsCfg, err := newTLSConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: cfg.Timeouts.Connect.D(), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.Timeouts.Connect.D(),
		ResponseHeaderTimeout: cfg.Timeouts.Response.D(),
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}, nil
}

func newTLSConfig(c config.ShipTLS) (*tls.Config, error) {
	t := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, // #nosec G402 -- explicit opt-in
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read ship.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot use ship.tls.ca_file %s: no PEM certificate in it", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load ship.tls.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// secretFile is a credential read from a file and read again when the
// file's modification time or size changes, so that rotated tokens apply
// without a restart. Safe for concurrent use.
type secretFile struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	value string
}

// get returns the current secret. When the file cannot be read any more it
// returns the last value read together with the error.
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

// auth sets the Authorization header of requests.
type auth struct {
	username string
	password *secretFile
	bearer   *secretFile
}

// newAuth reads the credential files once so that a missing file fails New.
func newAuth(c config.ShipAuth) (*auth, error) {
	a := &auth{username: c.Username}
	if c.PasswordFile != "" {
		a.password = &secretFile{path: c.PasswordFile}
		if _, err := a.password.get(); err != nil {
			return nil, fmt.Errorf("cannot use ship.auth.password_file: %w", err)
		}
	}
	if c.BearerTokenFile != "" {
		a.bearer = &secretFile{path: c.BearerTokenFile}
		if _, err := a.bearer.get(); err != nil {
			return nil, fmt.Errorf("cannot use ship.auth.bearer_token_file: %w", err)
		}
	}
	return a, nil
}

// apply sets the header on req. A file that became unreadable keeps its
// last value; the error is returned for a throttled log line.
func (a *auth) apply(req *http.Request) error {
	switch {
	case a.bearer != nil:
		tok, err := a.bearer.get()
		req.Header.Set("Authorization", "Bearer "+tok)
		return err
	case a.password != nil:
		pw, err := a.password.get()
		req.SetBasicAuth(a.username, pw)
		return err
	}
	return nil
}
