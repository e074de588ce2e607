// Package credfile reads the host's credential files: TLS material named by
// a config.ShipTLS, and passwords and tokens read again when their file
// changes. The shipper, the scraper and HTTP discovery use it, so that a
// credential file is read, checked and reported the same way by each.
package credfile

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
)

// TLS builds the TLS settings c names (TLS 1.2 at least). key is the
// config key c was read from (for example "ship.tls"), named in errors;
// "tls" when empty.
func TLS(c config.ShipTLS, key string) (*tls.Config, error) {
	if key == "" {
		key = "tls"
	}
	t := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, // #nosec G402 -- the host's own explicit opt-in
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot use %s.ca_file %s: no PEM certificate in it", key, c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load %s.cert_file/key_file: %w", key, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Secret is a password or token kept in a file (trailing newlines
// dropped), read again when the file's modification time or size changes,
// so that a rotated secret applies without a restart. Safe for concurrent
// use.
type Secret struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	value string
}

// NewSecret returns the secret in the file at path; it reads nothing yet.
func NewSecret(path string) *Secret { return &Secret{path: path} }

// Get returns the current secret. When the file cannot be read any more,
// it returns the last value read together with the error.
func (f *Secret) Get() (string, error) {
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
