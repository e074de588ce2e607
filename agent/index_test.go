package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIndexPage checks the agent's / : a short HTML page (200, text/html)
// linking /metrics, /healthz and /readyz and saying where the cluster's
// page is (its link when known, how to start one when not), where there
// was a 404; other unknown paths still get 404.
func TestIndexPage(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	f := func(name string, opts []Option, wants ...string) {
		t.Run(name, func(t *testing.T) {
			a, err := New(fixtureConfig(t, up.URL, "host-1"), nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					t.Error(err)
				}
			}()
			select {
			case <-a.Ready():
			case err := <-errc:
				t.Fatalf("Run: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("not ready after 10s")
			}
			base := "http://" + a.Addr()
			resp, body := get(base + "/")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("GET /: %s, %q; want 200 text/html", resp.Status, resp.Header.Get("Content-Type"))
			}
			for _, want := range append([]string{`<a href="/metrics">`, `<a href="/healthz">`, `<a href="/readyz">`, "procfleet agent host-1"}, wants...) {
				if !strings.Contains(body, want) {
					t.Errorf("GET / lacks %q:\n%s", want, body)
				}
			}
			for _, path := range []string{"/nope", "/metrics/x", "/index.html"} {
				if resp, _ := get(base + path); resp.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s: %s; want 404", path, resp.Status)
				}
			}
		})
	}
	f("standalone", nil, "A standalone agent")
	f("clustered", []Option{WithCluster(ClusterInfo{Cluster: "prod", Node: "h1"})},
		"Node <b>h1</b> of cluster <b>prod</b>", "<code>procfleet ui --etcd URLS --cluster prod</code>")
	f("with the cluster page", []Option{WithCluster(ClusterInfo{Cluster: "dev", Node: "h1", Page: "http://127.0.0.1:9480/"})},
		`The cluster page: <a href="http://127.0.0.1:9480/">`)
}
