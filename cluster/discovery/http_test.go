package discovery

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/procfleet/procfleet/config"
)

// sdServer is an HTTP SD endpoint whose answer tests change.
type sdServer struct {
	*httptest.Server
	hits atomic.Int64

	pathHits sync.Map // path -> *atomic.Int64

	mu          sync.Mutex
	status      int
	contentType string
	body        string
	lastReq     *http.Request
}

func startSD(t *testing.T, body string, tlsServer bool) *sdServer {
	t.Helper()
	s := &sdServer{status: 200, contentType: "application/json", body: body}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		n, _ := s.pathHits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		s.mu.Lock()
		status, ct, body := s.status, s.contentType, s.body
		s.lastReq = r.Clone(r.Context())
		s.mu.Unlock()
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	if tlsServer {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *sdServer) set(status int, contentType, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.contentType, s.body = status, contentType, body
}

// hitsOf returns the requests for path.
func (s *sdServer) hitsOf(path string) int64 {
	if n, ok := s.pathHits.Load(path); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func (s *sdServer) request() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastReq
}

func httpJob(url, extra string) string {
	return fmt.Sprintf(`
- job_name: web
  http_sd_configs:
    - url: %s
      refresh_interval: 50ms
%s
  relabel_configs:
    - source_labels: [__meta_url]
      target_label: from
`, url, extra)
}

func TestHTTPSD(t *testing.T) {
	s := startSD(t, `[{"targets": ["a:1", "b:1"], "labels": {"env": "prod"}}, {"targets": ["c:1"]}]`, false)
	j := runJob(t, httpJob(s.URL+"/sd", ""), Deps{})
	ts := waitSet(t, j, "three targets", hasAddresses("a:1", "b:1", "c:1"))
	if got := ts.Labels[0].Get("from"); got != s.URL+"/sd" {
		t.Fatalf("__meta_url = %q", got)
	}
	if got := ts.Labels[0].Get("env"); got != "prod" {
		t.Fatalf("env = %q", got)
	}
	req := s.request()
	for h, want := range map[string]string{"Accept": "application/json", "User-Agent": "procfleet", "X-Prometheus-Refresh-Interval-Seconds": "0.05"} {
		if got := req.Header.Get(h); got != want {
			t.Errorf("%s: %q; want %q", h, got, want)
		}
	}

	// Each failure keeps the last targets and says what failed.
	for _, tc := range []struct {
		status      int
		contentType string
		body        string
		want        string
	}{
		{500, "application/json", `[]`, "server returned HTTP status 500 Internal Server Error; want 200 OK"},
		{200, "text/plain", `[]`, `unsupported content type "text/plain"`},
		{200, "application/json; charset=utf-8", `[{"targets": [1]}]`, "group 0: targets[0]: a number"},
		{200, "application/json", `<html>`, "invalid character '<'"},
	} {
		s.set(tc.status, tc.contentType, tc.body)
		st := waitStatus(t, j, tc.want, func(st Status) bool { return strings.Contains(srcAt(st, 0).LastError, tc.want) })
		if srcAt(st, 0).Targets != 3 || st.Targets != 3 {
			t.Fatalf("after %q: status %+v; want the last 3 targets kept", tc.want, st)
		}
	}
	if cur, _ := j.Current(); cur.Version != 1 {
		t.Fatalf("failures changed the set: version %d", cur.Version)
	}
	s.set(200, "application/json", `[{"targets": ["d:1"]}]`)
	waitSet(t, j, "d:1", hasAddresses("d:1"))
	waitStatus(t, j, "no error", func(st Status) bool { return srcAt(st, 0).LastError == "" })
}

// An endless body is refused after the job's target bound: the fetch
// stops reading, and the set keeps its last targets.
func TestHTTPSDHostileBody(t *testing.T) {
	var written atomic.Int64
	var hostile atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !hostile.Load() {
			fmt.Fprint(w, `[{"targets": ["a:1"]}]`)
			return
		}
		n, _ := fmt.Fprint(w, `[{"targets": [`)
		item := []byte(strings.Repeat(`"db-1.example.com:9100",`, 1000))
		for { // 10 million targets and more, until the client goes
			k, err := w.Write(item)
			n += k
			if err != nil {
				break
			}
		}
		written.Add(int64(n))
	}))
	t.Cleanup(srv.Close)
	j := runJob(t, httpJob(srv.URL, ""), Deps{})
	waitSet(t, j, "a:1", hasAddresses("a:1"))
	hostile.Store(true)
	st := waitStatus(t, j, "the bound's error", func(st Status) bool { return srcAt(st, 0).LastError != "" })
	if e := srcAt(st, 0).LastError; !strings.Contains(e, "more than 100000 targets") || st.Targets != 1 {
		t.Fatalf("status = %+v", st)
	}
	waitStatus(t, j, "the server to see the client go", func(Status) bool { return written.Load() > 0 })
	if n := written.Load(); n > 64<<20 {
		t.Fatalf("the server wrote %d MB before the client went", n>>20)
	}
}

// http_sd_configs' credentials are the host's, by name: basic auth,
// bearer token, a CA; a credential the host does not define, or pinned to
// other hosts, stops the fetch before any request.
func TestHTTPSDCredentials(t *testing.T) {
	s := startSD(t, `[{"targets": ["a:1"]}]`, true)
	dir := t.TempDir()
	pw, tok, ca := filepath.Join(dir, "pw"), filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")
	for path, content := range map[string]string{pw: "s3cret\n", tok: "tok-1\n",
		ca: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	host := strings.TrimPrefix(s.URL, "https://")
	creds := map[string]config.Credential{
		"sd":     {ShipAuth: config.ShipAuth{Username: "prom", PasswordFile: pw}, TLS: config.ShipTLS{CAFile: ca}},
		"bearer": {ShipAuth: config.ShipAuth{BearerTokenFile: tok}, TLS: config.ShipTLS{CAFile: ca}, Hosts: []string{host}},
		"pinned": {ShipAuth: config.ShipAuth{BearerTokenFile: tok}, Hosts: []string{"elsewhere.example.com"}},
	}
	deps := Deps{Credentials: func() (map[string]config.Credential, string) { return creds, "credentials: in agent.yaml" }}

	j := runJob(t, httpJob(s.URL, "      basic_auth: {credential: sd}\n      tls_config: {credential: sd}"), deps)
	waitSet(t, j, "a:1", hasAddresses("a:1"))
	if u, p, ok := s.request().BasicAuth(); !ok || u != "prom" || p != "s3cret" {
		t.Fatalf("basic auth %q %q %v", u, p, ok)
	}

	j = runJob(t, httpJob(s.URL, "      authorization: {credential: bearer}\n      tls_config: {credential: bearer}"), deps)
	waitSet(t, j, "a:1", hasAddresses("a:1"))
	if got := s.request().Header.Get("Authorization"); got != "Bearer tok-1" {
		t.Fatalf("Authorization %q", got)
	}

	for i, tc := range []struct{ extra, want string }{
		{"      tls_config: {credential: nope}", `tls_config: credential "nope" is not defined in this host's credentials (credentials: in agent.yaml)`},
		{"      authorization: {credential: pinned}", "not fetched: a credential it names may not be sent to " + host},
		{"", "certificate signed by unknown authority"}, // no handshake, no request
	} {
		path := fmt.Sprintf("/case-%d", i)
		j := runJob(t, httpJob(s.URL+path, tc.extra), deps)
		st := waitStatus(t, j, tc.want, func(st Status) bool { return len(st.Sources) > 0 && srcAt(st, 0).LastError != "" })
		if !strings.Contains(srcAt(st, 0).LastError, tc.want) {
			t.Fatalf("error %q; want %q", srcAt(st, 0).LastError, tc.want)
		}
		if n := s.hitsOf(path); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	}
}
