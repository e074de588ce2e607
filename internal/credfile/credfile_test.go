package credfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

// A rotated secret is read again; a removed one keeps its last value and
// says why.
func TestSecretRotates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewSecret(p)
	if v, err := s.Get(); v != "one" || err != nil {
		t.Fatalf("Get = %q, %v; want one", v, err)
	}
	if err := os.WriteFile(p, []byte("second\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(); v != "second" || err != nil {
		t.Fatalf("after rotation Get = %q, %v; want second", v, err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(); v != "second" || err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("after removal Get = %q, %v; want the last value and an error naming %s", v, err, p)
	}
}

// Errors name the key the files came from.
func TestTLSErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c         config.ShipTLS
		key, want string
	}{
		{config.ShipTLS{CAFile: filepath.Join(dir, "missing")}, "ship.tls", "cannot read ship.tls.ca_file"},
		{config.ShipTLS{CAFile: notPEM}, "", "cannot use tls.ca_file " + notPEM + ": no PEM certificate"},
		{config.ShipTLS{CertFile: notPEM, KeyFile: notPEM}, "credentials.a.tls", "cannot load credentials.a.tls.cert_file/key_file"},
	} {
		_, err := TLS(tc.c, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TLS(%+v, %q) = %v; want an error with %q", tc.c, tc.key, err, tc.want)
		}
	}
	tc, err := TLS(config.ShipTLS{ServerName: "vm.example"}, "ship.tls")
	if err != nil || tc.ServerName != "vm.example" || tc.MinVersion == 0 {
		t.Fatalf("TLS = %+v, %v", tc, err)
	}
}
