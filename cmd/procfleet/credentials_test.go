package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// shadowDoc is a cluster document that would make every agent read a host
// file (secret) and send it as basic auth.
func shadowDoc(upstreams, secret string) string {
	return upstreams + `agents:
  ship:
    auth:
      password_file: ` + secret + `
      username: root
`
}

// `config validate` and `config set` refuse a cluster document that names
// a host file, with the key, the line and how to name a credential.
func TestConfigSetRefusesHostFiles(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=creds"
	dir := t.TempDir()
	ups := "upstreams:\n  - {name: vm, url: \"http://127.0.0.1:8428/api/v1/import/prometheus\", capacity: 1MiB/s}\nring: {fallbacks: 0}\n"
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, ups)
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", good); code != 0 {
		t.Fatal(stderr)
	}
	for name, c := range map[string]struct{ doc, want string }{
		"agents": {shadowDoc(ups, "/etc/shadow"),
			"agents.ship.auth.password_file: line 7: not accepted in the cluster config: credentials and TLS settings are host-local"},
		"overrides": {ups + "overrides:\n  - match: {nodes: [n1]}\n    agents: {ship: {tls: {insecure_skip_verify: true}}}\n",
			"overrides[0].agents.ship.tls.insecure_skip_verify: line 6: not accepted in the cluster config"},
	} {
		doc, want := c.doc, c.want
		bad := filepath.Join(dir, name+".yaml")
		writeFile(t, bad, doc)
		for _, args := range [][]string{
			{"config", "validate", "-f", bad},
			{"config", "set", ep, cl, "-f", bad},
			{"cluster", "bootstrap", ep, cl, "--config", bad, "--force"},
		} {
			_, stderr, code := run(t, args...)
			if code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "upstreams[].credential: NAME") {
				t.Fatalf("%s: procfleet %s: exit %d, stderr %q; want a failure with %q and how to name a credential",
					name, strings.Join(args, " "), code, stderr, want)
			}
		}
	}
	got, stderr, code := run(t, "config", "get", ep, cl)
	if code != 0 || got != ups {
		t.Fatalf("config get after the refused writes: exit %d, %q (%s); want the bootstrap document", code, got, stderr)
	}
}

// authLog records the Authorization header of every request an upstream
// gets, with the instance the samples carry.
type authLog struct {
	mu   sync.Mutex
	reqs []authReq
}

type authReq struct {
	method, instance, auth string
}

func newAuthUpstream(t *testing.T) (*authLog, string) {
	t.Helper()
	l := &authLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		inst := ""
		for _, el := range r.URL.Query()["extra_label"] {
			if v, ok := strings.CutPrefix(el, "instance="); ok {
				inst = v
			}
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, authReq{r.Method, inst, r.Header.Get("Authorization")})
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return l, srv.URL + "/api/v1/import/prometheus"
}

func (l *authLog) all() []authReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// posts returns the Authorization headers of the posts for instance.
func (l *authLog) posts(instance string) []string {
	var out []string
	for _, r := range l.all() {
		if r.method == http.MethodPost && r.instance == instance {
			out = append(out, r.auth)
		}
	}
	return out
}

// A clustered agent and relay send each upstream the credential that the
// cluster config names for it, from their own files; an upstream whose
// credential a host does not define gets nothing from it and the host's
// status says why; a cluster config written straight into etcd with a host
// file in it is not applied, and nothing of that file leaves the host; a
// credential renamed in the cluster config applies live.
func TestClusterCredentialsStayOnTheHost(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=credse2e"
	dir := t.TempDir()
	logA, urlA := newAuthUpstream(t)
	logB, urlB := newAuthUpstream(t)
	secret := filepath.Join(dir, "shadow")
	writeFile(t, secret, "TOP-SECRET-HOST-FILE\n")
	agentCfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, filepath.Join(dir, "a.token"), "tok-a\n")
	writeFile(t, filepath.Join(dir, "a2.token"), "tok-a2\n")
	writeFile(t, agentCfg, "credentials:\n  a-writer: {bearer_token_file: "+filepath.Join(dir, "a.token")+"}\n"+
		"  a2-writer: {bearer_token_file: "+filepath.Join(dir, "a2.token")+"}\n")
	relayCfg := filepath.Join(dir, "relay.yaml")
	writeFile(t, filepath.Join(dir, "relay.token"), "tok-relay\n")
	writeFile(t, relayCfg, "credentials:\n  a-writer: {bearer_token_file: "+filepath.Join(dir, "relay.token")+"}\n")

	doc := func(credA string) string {
		return `upstreams:
  - {name: up-a, url: "` + urlA + `", capacity: 1MiB/s, credential: ` + credA + `}
  - {name: up-b, url: "` + urlB + `", capacity: 1MiB/s, credential: b-writer}
status: {interval: 1s}
`
	}
	cfgFile := filepath.Join(dir, "cluster.yaml")
	writeFile(t, cfgFile, doc("a-writer"))
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	start := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	start("agent", ep, cl, "--config", agentCfg, "--node", "n1", "--hostname", "n1", "--procfs-root", fixture,
		"--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
	relayAddr := testenv.FreeAddr(t)
	start("relay", ep, cl, "--config", relayCfg, "--node", "r1", "--listen", relayAddr, "--data-dir", t.TempDir(),
		"--gossip-listen", "127.0.0.1:0", "--log-level", "warn")

	status := func() clusterStatus {
		t.Helper()
		out, stderr, code := run(t, "status", ep, cl, "-o", "json")
		if code != 0 {
			t.Fatalf("status: %s", stderr)
		}
		var s clusterStatus
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, out)
		}
		return s
	}
	space, err := keys.New("credse2e")
	if err != nil {
		t.Fatal(err)
	}
	cli := etcd.Client(t)
	// lastError reads a member's status key itself: `procfleet status`
	// refuses to show a cluster whose config is invalid.
	lastError := func(node string) string {
		t.Helper()
		key, err := space.Status(node)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			LastError string `json:"last_error"`
		}
		if len(resp.Kvs) == 1 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &st)
		}
		return st.LastError
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; last errors n1 %q, r1 %q; up-a got %+v; up-b got %+v",
					what, lastError("n1"), lastError("r1"), logA.all(), logB.all())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	undefined := func(file string) string {
		return `upstream up-b: credential "b-writer" is not defined in this host's credentials (credentials: in ` + file + `); not sending there`
	}
	waitFor("both members to report up-b's missing credential", func() bool {
		s := status()
		return len(s.Agents) == 1 && len(s.Relays) == 1 && strings.Contains(s.Agents[0].LastError, undefined(agentCfg)) &&
			strings.Contains(s.Relays[0].LastError, undefined(relayCfg))
	})
	waitFor("the agent's batches in up-a", func() bool { return len(logA.posts("n1")) >= 2 })

	// The relay forwards what it takes to up-a with its own credential.
	resp, err := http.Post("http://"+relayAddr+"/api/v1/import/prometheus?extra_label=instance=via-relay",
		"text/plain", strings.NewReader("relay_test_metric 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("relay import: %s", resp.Status)
	}
	waitFor("the relay's forward in up-a", func() bool { return len(logA.posts("via-relay")) >= 1 })

	// An etcd writer puts a document that names a host file: the members
	// keep their revision and say why; the file never leaves the host.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, space.Config(), shadowDoc(doc("a-writer"), secret)); err != nil {
		t.Fatal(err)
	}
	refused := "agents.ship.auth.password_file: line 8: not accepted in the cluster config"
	waitFor("the members to refuse the document", func() bool {
		return strings.Contains(lastError("n1"), refused) && strings.Contains(lastError("r1"), refused)
	})
	sentBefore := len(logA.posts("n1"))
	waitFor("more of the agent's batches in up-a", func() bool { return len(logA.posts("n1")) >= sentBefore+2 })

	// A credential renamed in the cluster config applies live.
	writeFile(t, cfgFile, doc("a2-writer"))
	if _, stderr, code := run(t, "config", "set", ep, cl, "-f", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	waitFor("the agent's batches with the renamed credential", func() bool {
		return slices.Contains(logA.posts("n1"), "Bearer tok-a2")
	})

	for _, r := range logB.all() {
		t.Fatalf("up-b, whose credential no host defines, got a request: %+v", r)
	}
	seenA := false
	for _, r := range logA.all() {
		want := []string{"Bearer tok-relay"} // what the relay forwards, its own metrics too
		if r.instance == "n1" {
			want = []string{"Bearer tok-a", "Bearer tok-a2"}
		}
		if r.method == http.MethodPost && !slices.Contains(want, r.auth) {
			t.Fatalf("up-a got %+v; want the Authorization header to be one of %q", r, want)
		}
		seenA = seenA || (r.instance == "n1" && r.auth == "Bearer tok-a")
	}
	if !seenA {
		t.Fatal("up-a never got the agent's first credential")
	}
}

// A host's credential whose file is missing stops the start, naming the
// config file and the key, rather than an upstream later.
func TestCredentialFilesCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "host.yaml")
	missing := filepath.Join(dir, "missing.token")
	writeFile(t, cfg, "credentials:\n  vm-writer: {bearer_token_file: "+missing+"}\n")
	want := cfg + ": cannot use credentials.vm-writer.bearer_token_file: cannot stat " + missing
	for _, args := range [][]string{
		{"agent", "--config", cfg, "--upstream", "http://127.0.0.1:1/api/v1/import/prometheus", "--listen", "127.0.0.1:0"},
		{"relay", "--config", cfg, "--upstream", "http://127.0.0.1:1/api/v1/import/prometheus", "--listen", "127.0.0.1:0",
			"--data-dir", t.TempDir()},
	} {
		_, stderr, code := run(t, args...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Fatalf("procfleet %s: exit %d, stderr %q; want exit 2 with %q", args[0], code, stderr, want)
		}
	}
}
