package ship

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

func bearerCred(upstream, name, file string) config.UpstreamCredential {
	return config.UpstreamCredential{Upstream: upstream, Name: name,
		Credential: config.Credential{ShipAuth: config.ShipAuth{BearerTokenFile: file}}}
}

// Each upstream is sent to with its own credential, resolved from the
// host's files; an upstream without one gets ship.auth.
func TestPerUpstreamCredentials(t *testing.T) {
	dir := t.TempDir()
	upA, upB, upC := newUpstream(t, nil), newUpstream(t, nil), newUpstream(t, nil)
	cfg := testConfig(upA.URL(), upB.URL(), upC.URL())
	cfg.Auth.BearerTokenFile = writeFile(t, dir, "default.token", "tok-default\n")
	cfg.Credentials = map[string]config.UpstreamCredential{
		upA.URL(): bearerCred("vm-a", "a-writer", writeFile(t, dir, "a.token", "tok-a\n")),
		upB.URL(): {Upstream: "vm-b", Name: "b-writer", Credential: config.Credential{
			ShipAuth: config.ShipAuth{Username: "user-b", PasswordFile: writeFile(t, dir, "b.password", "pw-b\n")}}},
	}
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	for i := range 6 {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "six batches", 10*time.Second, func() bool {
		return len(upA.received())+len(upB.received())+len(upC.received()) == 6
	})
	basicB := "Basic " + base64.StdEncoding.EncodeToString([]byte("user-b:pw-b"))
	for _, c := range []struct {
		name string
		up   *upstream
		want string
	}{{"vm-a", upA, "Bearer tok-a"}, {"vm-b", upB, basicB}, {"vm-c", upC, "Bearer tok-default"}} {
		got := c.up.received()
		if len(got) == 0 {
			t.Fatalf("%s took no batch of six sent round robin", c.name)
		}
		for _, p := range got {
			if h := p.header.Get("Authorization"); h != c.want {
				t.Fatalf("%s: Authorization = %q; want %q", c.name, h, c.want)
			}
		}
	}
}

// An upstream whose credential this host does not define, or cannot read,
// is never sent to nor probed, not even unauthenticated: the batches go to
// the next upstream, State and the log say why. Once its credential is
// given, it takes batches again.
func TestUnusableUpstreams(t *testing.T) {
	dir := t.TempDir()
	upD, upE := newUpstream(t, nil), newUpstream(t, nil)
	// upA refuses its first two batches: it turns unhealthy and is probed
	// back, which shows that the probe loop ran while upD and upE were
	// listed before it.
	upA := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	undefined := `upstream vm-d: credential "nope" is not defined in this host's credentials (credentials: in /etc/procfleet/agent.yaml); not sending there`
	creds := map[string]config.UpstreamCredential{
		upD.URL(): {Upstream: "vm-d", Name: "nope", Problem: undefined},
		upE.URL(): bearerCred("vm-e", "e-writer", filepath.Join(dir, "missing.token")),
		upA.URL(): bearerCred("vm-a", "a-writer", writeFile(t, dir, "a.token", "tok-a\n")),
	}
	cfg := testConfig(upD.URL(), upE.URL(), upA.URL())
	cfg.Strategy = config.StrategyOrdered
	cfg.Credentials = creds
	var logs testenv.Buffer
	s := newShipper(t, cfg, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, s)
	for i := range 3 {
		s.Enqueue(batch(t, line(i)))
	}
	waitFor(t, "three batches in vm-a", 10*time.Second, func() bool { return len(upA.received()) == 3 })
	if _, gets := upA.counts(); gets == 0 {
		t.Fatal("vm-a took its batches without a probe bringing it back")
	}
	for name, up := range map[string]*upstream{"vm-d": upD, "vm-e": upE} {
		if posts, gets := up.counts(); posts != 0 || gets != 0 {
			t.Fatalf("%s got %d posts and %d probes; want none", name, posts, gets)
		}
	}
	d, e := stateOf(t, s, upD.URL()), stateOf(t, s, upE.URL())
	if !d.Unusable || d.Healthy || d.LastError != undefined || !d.LastErrorAt.IsZero() {
		t.Fatalf("vm-d state = %+v; want unusable with %q and no error time", d, undefined)
	}
	wantE := `upstream vm-e: credential "e-writer": cannot use credentials.e-writer.bearer_token_file: cannot stat`
	if !e.Unusable || e.Healthy || !strings.HasPrefix(e.LastError, wantE) {
		t.Fatalf("vm-e state = %+v; want unusable with %q", e, wantE)
	}
	// The text handler quotes the values: " becomes \".
	for _, want := range []string{"upstream not usable from this host", `credential \"nope\" is not defined`,
		strings.ReplaceAll(wantE, `"`, `\"`)} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}

	// The host gets the credential: vm-d is first again and takes the next
	// batch, with it.
	creds[upD.URL()] = bearerCred("vm-d", "nope", writeFile(t, dir, "d.token", "tok-d\n"))
	if err := s.SetUpstreamCredentials(cfg.Upstreams, creds); err != nil {
		t.Fatal(err)
	}
	s.Enqueue(batch(t, line(3)))
	waitFor(t, "a batch in vm-d", 10*time.Second, func() bool { return len(upD.received()) == 1 })
	if h := upD.received()[0].header.Get("Authorization"); h != "Bearer tok-d" {
		t.Fatalf("vm-d: Authorization = %q; want Bearer tok-d", h)
	}
	if d := stateOf(t, s, upD.URL()); d.Unusable || !d.Healthy || d.LastError != "" {
		t.Fatalf("vm-d state after the credential came = %+v", d)
	}
}

// With no usable upstream a batch waits (or is spooled); it is not sent
// without its credential.
func TestOnlyUnusableUpstreamsHoldBatches(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := testConfig(up.URL())
	cfg.Credentials = map[string]config.UpstreamCredential{up.URL(): {Upstream: "vm", Name: "x", Problem: "upstream vm: no"}}
	s := newShipper(t, cfg, Deps{})
	run(t, s)
	s.Enqueue(batch(t, line(1)))
	waitFor(t, "the batch taken off the queue", 5*time.Second, func() bool { return s.QueueLen() == 0 })
	if posts, gets := up.counts(); posts != 0 || gets != 0 {
		t.Fatalf("unusable upstream got %d posts and %d probes", posts, gets)
	}
	dir := t.TempDir()
	err := s.SetUpstreamCredentials(cfg.Upstreams, map[string]config.UpstreamCredential{
		up.URL(): bearerCred("vm", "x", writeFile(t, dir, "x.token", "tok-x\n")),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held batch", 5*time.Second, func() bool { return len(up.received()) == 1 })
	if h := up.received()[0].header.Get("Authorization"); h != "Bearer tok-x" {
		t.Fatalf("Authorization = %q; want Bearer tok-x", h)
	}
	if posts, gets := up.counts(); posts != 1 || gets != 0 {
		t.Fatalf("upstream got %d posts and %d probes; want the one batch, sent with its credential", posts, gets)
	}
}

func TestCheckCredential(t *testing.T) {
	dir := t.TempDir()
	ok := config.Credential{ShipAuth: config.ShipAuth{BearerTokenFile: writeFile(t, dir, "t", "tok\n")}}
	if err := CheckCredential("vm", ok); err != nil {
		t.Fatal(err)
	}
	f := func(c config.Credential, want string) {
		t.Helper()
		if err := CheckCredential("vm", c); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckCredential(%+v) = %v; want an error with %q", c, err, want)
		}
	}
	f(config.Credential{ShipAuth: config.ShipAuth{Username: "u", PasswordFile: filepath.Join(dir, "nope")}},
		"cannot use credentials.vm.password_file: cannot stat")
	f(config.Credential{TLS: config.ShipTLS{CAFile: writeFile(t, dir, "ca", "not PEM")}},
		"cannot use credentials.vm.tls.ca_file")
}
