package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

const twoUpstreams = `upstreams:
  - {name: vm-a, url: "http://127.0.0.1:1/api/v1/import/prometheus", capacity: 1MiB/s}
  - {name: vm-b, url: "http://127.0.0.1:2/api/v1/import/prometheus", capacity: 1MiB/s}
`

// startServer serves the page of cluster in a real etcd on a loopback
// port until the test ends, and returns its base URL.
func startServer(t *testing.T, endpoints []string, cluster string) string {
	t.Helper()
	url, _ := startStoppable(t, endpoints, cluster)
	return url
}

// startStoppable is startServer that also returns a function that stops
// the server and fails the test unless Serve returns nil within 10 s.
func startStoppable(t *testing.T, endpoints []string, cluster string) (string, func()) {
	t.Helper()
	cli := etcdtest.NewEtcdClient(t, endpoints)
	cfg := DefaultConfig()
	cfg.Cluster = cluster
	s, err := New(cfg, cli, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return within 10s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// events reads the views of an event stream; the channel is closed when
// the stream ends.
func events(t *testing.T, url string) (<-chan page, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/events Content-Type %q", ct)
	}
	out := make(chan page, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "view":
				var p page
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p); err != nil {
					t.Errorf("event data: %v", err)
					return
				}
				out <- p
			}
		}
	}()
	return out, func() { cancel(); <-done }
}

func next(t *testing.T, ch <-chan page, what string, timeout time.Duration, cond func(page) bool) page {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				t.Fatalf("the event stream ended before a view with %s", what)
			}
			if cond(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no view with %s within %v", what, timeout)
		}
	}
}

// TestEventsFollowEtcd: the event stream starts with the current view and
// carries a member that registers within 2 s; /api/view answers the same;
// and Serve returns with a stream still open when its context ends.
func TestEventsFollowEtcd(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	cli := etcd.Client(t)
	space, _ := keys.New("web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.Put(ctx, space.Config(), twoUpstreams); err != nil {
		t.Fatal(err)
	}
	url, stopServer := startStoppable(t, etcd.Endpoints, "web")
	ch, stop := events(t, url)
	defer stop()
	first := next(t, ch, "the config", 10*time.Second, func(p page) bool { return len(p.View.Upstreams) == 2 })
	if first.View.Name != "web" || len(first.View.Agents) != 0 || first.Now.IsZero() {
		t.Fatalf("first view: %+v", first)
	}
	key, _ := space.Member(keys.Agent, "n1")
	put := time.Now()
	if _, err := cli.Put(ctx, key, `{"address":"127.0.0.1:7946","kind":"agent"}`); err != nil {
		t.Fatal(err)
	}
	next(t, ch, "n1", 2*time.Second, func(p page) bool { return len(p.View.Agents) == 1 })
	t.Logf("a registration reached the event stream %v after the write", time.Since(put).Round(time.Millisecond))

	body, ctype := get(t, url+"/api/view")
	var p page
	if err := json.Unmarshal([]byte(body), &p); err != nil || ctype != "application/json" || len(p.View.Agents) != 1 {
		t.Fatalf("/api/view (%s, %v): %s", ctype, err, body)
	}

	// The server stops with the stream open, and ends it at once (not
	// after the 5 s it gives requests to finish).
	stopping := time.Now()
	stopServer()
	if d := time.Since(stopping); d > 3*time.Second {
		t.Errorf("the server took %v to stop with an event stream open", d.Round(time.Millisecond))
	}
	select {
	case <-drained(ch):
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream stayed open after the server stopped")
	}
}

// drained is closed once ch is.
func drained(ch <-chan page) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

func get(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b), resp.Header.Get("Content-Type")
}

// TestPageLoadsNothingFromElsewhere: the page and its assets are served
// from the binary, name no other host, and the policy header forbids
// loading from one.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	url := startServer(t, etcd.Endpoints, "web")
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import|fonts\.|cdn`)
	err = fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		served := "/static/" + strings.TrimPrefix(path, "assets/")
		body, _ := get(t, url+served)
		data, _ := fs.ReadFile(assets, path)
		if body != string(data) {
			t.Errorf("%s is not served as embedded", served)
		}
		if m := external.FindString(body); m != "" {
			t.Errorf("%s refers to another host: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	index, ctype := get(t, url+"/")
	if !strings.HasPrefix(ctype, "text/html") || !strings.Contains(index, `src="/static/app.js"`) {
		t.Fatalf("/ (%s): %s", ctype, index)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Error("a config without a cluster accepted")
	}
	c.Cluster = "ok"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Heartbeat = 0
	if err := c.Validate(); err == nil {
		t.Error("heartbeat 0 accepted")
	}
}
