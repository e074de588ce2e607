package scrape

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
)

// TestScrapeRequest checks the request a scrape sends: method, path and
// query, the headers Prometheus sends, and the credentials of the host
// that the job names: basic auth, a bearer token, TLS with the host's CA.
func TestScrapeRequest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var mu sync.Mutex
	seen := map[string]*http.Request{}
	handler := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Query().Get("who")] = r
		mu.Unlock()
		text("a 1\n")(w, r)
	}
	plain := httptest.NewServer(http.HandlerFunc(handler))
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(handler))
	t.Cleanup(tlsSrv.Close)
	ca := write("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})))
	creds := map[string]config.Credential{
		"basic":  {ShipAuth: config.ShipAuth{Username: "u", PasswordFile: write("pw", "secret\n")}},
		"token":  {ShipAuth: config.ShipAuth{BearerTokenFile: write("tok", "t0k\n")}},
		"tls":    {TLS: config.ShipTLS{CAFile: ca}},
		"pinned": {ShipAuth: config.ShipAuth{BearerTokenFile: write("tok2", "x\n")}, Hosts: []string{"elsewhere.example.com"}},
	}
	h := startManager(t, DefaultConfig(), Deps{Credentials: creds, CredentialSource: "credentials: in the test"})
	job := func(name string, auth config.ScrapeAuth) *config.ScrapeConfig {
		// A TLS handshake under -race on a loaded machine can take a
		// second or more: the timeout must not be what fails a scrape.
		j := testJob(name, 4*time.Second)
		j.ScrapeTimeout = config.PromDuration(3 * time.Second)
		j.ScrapeAuth = auth
		return j
	}
	targets := []Target{
		target(t, job("none", config.ScrapeAuth{}), plain.URL+"/m?who=none"),
		target(t, job("basic", config.ScrapeAuth{BasicAuth: &config.BasicAuthRef{Credential: "basic"}}), plain.URL+"/m?who=basic"),
		target(t, job("token", config.ScrapeAuth{Authorization: &config.AuthorizationRef{Credential: "token"}}), plain.URL+"/m?who=token"),
		target(t, job("tls", config.ScrapeAuth{TLSConfig: &config.TLSRef{Credential: "tls"}}), tlsSrv.URL+"/m?who=tls"),
		target(t, job("notls", config.ScrapeAuth{}), tlsSrv.URL+"/m?who=notls"),
		target(t, job("pinned", config.ScrapeAuth{Authorization: &config.AuthorizationRef{Credential: "pinned"}}), plain.URL+"/m?who=pinned"),
		target(t, job("undefined", config.ScrapeAuth{BasicAuth: &config.BasicAuthRef{Credential: "nope"}}), plain.URL+"/m?who=undefined"),
	}
	h.m.Apply(targets)
	waitFor(t, "every target scraped", 20*time.Second, func() bool {
		if len(h.m.Targets()) != len(targets) {
			return false
		}
		for _, s := range h.m.Targets() {
			if s.Health == HealthUnknown {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	r := seen["none"]
	if r == nil || r.Method != "GET" || r.URL.Path != "/m" || r.Header.Get("Accept") != acceptHeader ||
		r.Header.Get("Accept-Encoding") != "gzip" || r.Header.Get(timeoutHeader) != "3" ||
		r.Header.Get("User-Agent") != userAgent || r.Header.Get("Authorization") != "" {
		t.Fatalf("request %+v", r)
	}
	if u, p, ok := seen["basic"].BasicAuth(); !ok || u != "u" || p != "secret" {
		t.Fatalf("basic auth %q %q %v", u, p, ok)
	}
	if a := seen["token"].Header.Get("Authorization"); a != "Bearer t0k" {
		t.Fatalf("Authorization %q", a)
	}
	if seen["tls"] == nil {
		t.Fatal("the https target with the host's CA was not scraped")
	}
	failing := map[string]string{
		"notls":     "certificate",
		"pinned":    "pinned to other hosts",
		"undefined": `credential "nope" is not defined in this host's credentials (credentials: in the test)`,
	}
	for who := range failing {
		if who != "notls" && seen[who] != nil {
			t.Errorf("%s: requested with credentials it may not send", who)
		}
	}
	for _, s := range h.m.Targets() {
		who := s.URL[strings.LastIndex(s.URL, "=")+1:]
		want := failing[who]
		if want == "" && s.Health != HealthUp || want != "" && (s.Health != HealthDown || !strings.Contains(s.LastError, want)) {
			t.Errorf("%s: %s %q; want the error to hold %q", who, s.Health, s.LastError, want)
		}
	}
}
