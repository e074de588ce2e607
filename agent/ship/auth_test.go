package ship

import (
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("agent:s3cret"))
	f := func(name string, a config.ShipAuth, want string, rotate func()) {
		t.Helper()
		up := newUpstream(t, nil)
		cfg := testConfig(up.URL())
		cfg.Auth = a
		s := newShipper(t, cfg, Deps{})
		run(t, s)
		s.Enqueue(batch(t, line(1)))
		waitFor(t, name, 5*time.Second, func() bool { return len(up.received()) == 1 })
		if got := up.received()[0].header.Get("Authorization"); got != want {
			t.Fatalf("%s: Authorization = %q; want %q", name, got, want)
		}
		if rotate == nil {
			return
		}
		rotate()
		s.Enqueue(batch(t, line(2)))
		waitFor(t, name+" rotated", 5*time.Second, func() bool { return len(up.received()) == 2 })
		if got := up.received()[1].header.Get("Authorization"); got != "Bearer tok-2" {
			t.Fatalf("%s: after rotation Authorization = %q", name, got)
		}
	}
	f("none", config.ShipAuth{}, "", nil)
	f("basic", config.ShipAuth{Username: "agent", PasswordFile: writeFile(t, dir, "pw", "s3cret\n")}, basic, nil)
	tok := writeFile(t, dir, "token", "tok-1\n")
	f("bearer", config.ShipAuth{BearerTokenFile: tok}, "Bearer tok-1", func() {
		writeFile(t, dir, "token", "tok-2\n")
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(tok, later, later); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTLS(t *testing.T) {
	up := &upstream{}
	up.srv = httptest.NewUnstartedServer(up)
	up.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	up.srv.StartTLS()
	t.Cleanup(up.srv.Close)
	ca := writeFile(t, t.TempDir(), "ca.pem", string(pem.EncodeToMemory(&pem.Block{
		Type: "CERTIFICATE", Bytes: up.srv.Certificate().Raw,
	})))

	cfg := testConfig(up.URL())
	cfg.TLS.CAFile = ca
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "delivery over TLS", 5*time.Second, func() bool { return len(up.received()) == 1 })

	// Without the CA the certificate is refused.
	cfg = testConfig(up.URL())
	cfg.FailuresToUnhealthy = 1
	cfg.DrainTimeout = config.Duration(100 * time.Millisecond)
	s2 := newShipper(t, cfg, Deps{})
	run(t, s2)
	s2.Enqueue(batch(t, line(2)))
	waitFor(t, "TLS failure", 5*time.Second, func() bool {
		return strings.Contains(stateOf(t, s2, up.URL()).LastError, "certificate")
	})
	if n := len(up.received()); n != 1 {
		t.Fatalf("server took %d batches; want only the one sent with the CA", n)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "ca.pem", "not a certificate")
	f := func(name string, mod func(*config.Ship), want string) {
		t.Helper()
		cfg := testConfig("http://127.0.0.1:1/api/v1/import/prometheus")
		mod(&cfg)
		_, err := New(cfg, Deps{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: New = %v; want an error with %q", name, err, want)
		}
	}
	f("bad url", func(c *config.Ship) { c.Upstreams = []string{"127.0.0.1:8428"} }, "ship.upstreams[0]")
	f("queue", func(c *config.Ship) { c.QueueBatches = 0 }, "ship.queue_batches")
	f("ca missing", func(c *config.Ship) { c.TLS.CAFile = filepath.Join(dir, "nope") }, "ship.tls.ca_file")
	f("ca not pem", func(c *config.Ship) { c.TLS.CAFile = notPEM }, "no PEM certificate")
	f("token missing", func(c *config.Ship) { c.Auth.BearerTokenFile = filepath.Join(dir, "nope") },
		"ship.auth.bearer_token_file")
	f("cert missing", func(c *config.Ship) {
		c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "c"), filepath.Join(dir, "k")
	}, "ship.tls.cert_file")
}

func TestEndpointLabel(t *testing.T) {
	f := func(raw, label, target, health string) {
		t.Helper()
		ep, err := parseEndpoint(raw, map[string][]string{"extra_label": {"job=procfleet"}})
		if err != nil {
			t.Fatal(err)
		}
		if ep.label != label || ep.target != target || ep.health != health {
			t.Fatalf("parseEndpoint(%q) = %q, %q, %q; want %q, %q, %q",
				raw, ep.label, ep.target, ep.health, label, target, health)
		}
	}
	f("https://u:p@vm:8428/api/v1/import/prometheus?a=b",
		"https://vm:8428/api/v1/import/prometheus",
		"https://u:p@vm:8428/api/v1/import/prometheus?a=b&extra_label=job%3Dprocfleet",
		"https://u:p@vm:8428/health")
	f("http://vminsert:8480/insert/0/prometheus/api/v1/import/prometheus",
		"http://vminsert:8480/insert/0/prometheus/api/v1/import/prometheus",
		"http://vminsert:8480/insert/0/prometheus/api/v1/import/prometheus?extra_label=job%3Dprocfleet",
		"http://vminsert:8480/health")
}
