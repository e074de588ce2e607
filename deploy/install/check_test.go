package install

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallRejectsBadInput(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	// cl is c, clustered.
	cl := func(c Config) Config {
		c.Etcd, c.Cluster = "http://10.0.0.1:2379", "prod"
		return c
	}
	vm := []string{"http://vm:8428/api/v1/import/prometheus"}
	for _, tc := range []struct {
		want string // the flag the error names
		cfg  Config
	}{
		{"--etcd", Config{Cluster: "prod"}},
		{"--etcd", Config{Etcd: "10.0.0.1:2379", Cluster: "prod"}},
		{"--etcd", Config{Etcd: "http://10.0.0.1", Cluster: "prod"}},
		{"--etcd", Config{Etcd: "http://10.0.0.1:2379,ftp://x:1", Cluster: "prod"}},
		{"--etcd", Config{Etcd: "http://user:secret@10.0.0.1:2379", Cluster: "prod"}},
		{"--cluster", Config{Etcd: "http://10.0.0.1:2379"}},
		{"--cluster", Config{Etcd: "http://10.0.0.1:2379", Cluster: "Prod"}},
		{"--node", cl(Config{Node: "Web_1"})},
		{"--node", cl(Config{Node: "-web"})},
		{"--labels", cl(Config{Labels: "zone"})},
		{"--labels", cl(Config{Labels: "1zone=a"})},
		{"--labels", cl(Config{Labels: "zone=a b"})},
		{"--upstream", cl(Config{Upstreams: vm})},
		{"--listen", cl(Config{Listen: "127.0.0.1:80"})},
		{"--listen", cl(Config{Listen: "localhost"})},
		{"--etcd-cert", cl(Config{EtcdAuth: EtcdAuth{Cert: "/etc/procfleet/cert.pem"}})},
		{"--etcd-user", cl(Config{EtcdAuth: EtcdAuth{User: "procfleet"}})},
		{"--etcd-ca", cl(Config{EtcdAuth: EtcdAuth{CA: "ca.pem"}})},
		{"--etcd-ca", cl(Config{EtcdAuth: EtcdAuth{CA: "/root/ca.pem"}})},
		{"--upstream", Config{Upstreams: []string{"vm:8428"}}},
		{"--upstream", Config{Upstreams: []string{"http://user:pw@vm:8428/api/v1/import/prometheus"}}},
		{"--node", Config{Upstreams: vm, Node: "web-1"}},
		{"--gossip-key-file", Config{Upstreams: vm, GossipKeyFile: "/etc/procfleet/gossip.key"}},
		{"--gossip-key-file", cl(Config{GossipKeyFile: "gossip.key"})},
		{"--gossip-key-file", cl(Config{GossipKeyFile: "/home/ops/gossip.key"})},
		{`kind "bogus"`, Config{Kind: "bogus", Upstreams: vm}},
	} {
		c := tc.cfg
		if c.Kind == "" {
			c.Kind = Agent
		}
		if c.Listen == "" {
			c.Listen = defaultListen(Agent)
		}
		c.Root = root
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate %+v: %v, want an error that names %s", c, err, tc.want)
		}
		out, err := runInstall(t, env, c)
		if err == nil || !errors.Is(err, ErrUsage) {
			t.Fatalf("install %+v: error %v, want a usage error\n%s", c, err, out)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("install %+v: error %q does not name %s", c, err, tc.want)
		}
		if got := tree(t, root); len(got) != 0 {
			t.Fatalf("install %+v failed after writing %v", c, got)
		}
	}
}

func TestValidateAcceptsDefaults(t *testing.T) {
	for _, kind := range []Kind{Agent, Relay} {
		c := DefaultConfig(kind)
		c.Upstreams = []string{"http://vm:8428/api/v1/import/prometheus"}
		if err := c.Validate(); err != nil {
			t.Errorf("standalone %s: %v", kind, err)
		}
		if err := clustered(kind, "").Validate(); err != nil {
			t.Errorf("clustered %s: %v", kind, err)
		}
	}
	c := DefaultConfig(Agent)
	c.Listen, c.Upstreams = "", []string{"http://vm:8428/api/v1/import/prometheus"}
	if err := c.Validate(); err != nil {
		t.Errorf("agent without listen: %v", err)
	}
}

func TestInstallNodeFromHostName(t *testing.T) {
	env := testEnv(t, writeExe(t, "binary\n"))
	env.Hostname = func() (string, error) { return "-Web", nil }
	// The host name is checked only for this host, not under a Root.
	c := clustered(Agent, "")
	if err := c.checkHost(env); err == nil || !strings.Contains(err.Error(), `--node: not given, and the host name "-Web"`) {
		t.Errorf("host name -Web: %v", err)
	}
	env.Hostname = func() (string, error) { return "WEB-1", nil }
	if err := c.checkHost(env); err != nil {
		t.Errorf("host name WEB-1 (node web-1): %v", err)
	}
	c.Root = "/mnt"
	env.Hostname = func() (string, error) { return "-Web", nil }
	if err := c.checkHost(env); err != nil {
		t.Errorf("--root: %v", err)
	}
}

func TestInstallEtcdAuth(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := clustered(Agent, root)
	c.Etcd = "https://10.0.0.1:2379"
	c.EtcdAuth = EtcdAuth{CA: ca, Cert: "/etc/procfleet/etcd.pem", Key: "/etc/procfleet/etcd-key.pem",
		User: "agent", PasswordFile: "/etc/procfleet/etcd-password"}
	mustInstall(t, env, c)
	got, err := os.ReadFile(filepath.Join(root, "etc/procfleet/agent.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{`PROCFLEET_ETCD_CA="` + ca + `"`, `PROCFLEET_ETCD_CERT="/etc/procfleet/etcd.pem"`,
		`PROCFLEET_ETCD_KEY="/etc/procfleet/etcd-key.pem"`, `PROCFLEET_ETCD_USER="agent"`,
		`PROCFLEET_ETCD_PASSWORD_FILE="/etc/procfleet/etcd-password"`} {
		if !strings.Contains(string(got), "\n"+l+"\n") {
			t.Errorf("agent.env lacks %s:\n%s", l, got)
		}
	}
	// For this host (no Root), the files must exist.
	h := clustered(Agent, "")
	h.Etcd, h.Node = "https://10.0.0.1:2379", "web-1"
	h.EtcdAuth.CA = ca
	if err := h.checkHost(env); err != nil {
		t.Errorf("existing --etcd-ca: %v", err)
	}
	h.EtcdAuth.CA = filepath.Join(dir, "missing.pem")
	if err := h.checkHost(env); err == nil || !strings.Contains(err.Error(), "--etcd-ca") {
		t.Errorf("missing --etcd-ca: %v", err)
	}
}

func TestInstallGossipKeyFile(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	c := clustered(Relay, root)
	c.GossipKeyFile = "/etc/procfleet/gossip.key" // not on this host: under a Root it is not looked at
	mustInstall(t, env, c)
	got, err := os.ReadFile(filepath.Join(root, "etc/procfleet/relay.env"))
	if err != nil {
		t.Fatal(err)
	}
	if l := `PROCFLEET_GOSSIP_KEY_FILE="/etc/procfleet/gossip.key"`; !strings.Contains(string(got), "\n"+l+"\n") {
		t.Errorf("relay.env lacks %s:\n%s", l, got)
	}
	// The unit reads the env file as sh would.
	out, err := newShell(t, `. "$1" && printf '%s' "$PROCFLEET_GOSSIP_KEY_FILE"`, filepath.Join(root, "etc/procfleet/relay.env"))
	if err != nil || out != "/etc/procfleet/gossip.key" {
		t.Errorf("sh reads PROCFLEET_GOSSIP_KEY_FILE %q (%v)", out, err)
	}
	// Without the flag the variable is not written: the env file would
	// override a drop-in's Environment=PROCFLEET_GOSSIP_KEY_FILE.
	c.GossipKeyFile = ""
	mustInstall(t, env, c)
	if got, _ := os.ReadFile(filepath.Join(root, "etc/procfleet/relay.env")); strings.Contains(string(got), "PROCFLEET_GOSSIP_KEY_FILE") {
		t.Errorf("relay.env names PROCFLEET_GOSSIP_KEY_FILE without --gossip-key-file:\n%s", got)
	}

	// For this host (no Root), the file must be one the relay takes.
	key := filepath.Join(dir, "gossip.key")
	h := clustered(Relay, "")
	h.Node, h.GossipKeyFile = "relay-1", key
	for _, tc := range []struct {
		content string
		mode    os.FileMode
		want    string // in the error; "" for none
	}{
		{"", 0, "no such file"},
		{"MDEyMzQ1Njc4OWFiY2RlZg==\n", 0o640, ""},
		{"MDEyMzQ1Njc4OWFiY2RlZg==\n", 0o600, ""},
		{"MDEyMzQ1Njc4OWFiY2RlZg==\n", 0o644, "mode 0644, open to every user"},
		{"MDEyMzQ1Njc4OWFiY2RlZg==\n", 0o642, "mode 0642, open to every user"},
		{"not a key\n", 0o600, "line 1: not base64"},
	} {
		os.Remove(key)
		if tc.mode != 0 {
			if err := os.WriteFile(key, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(key, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
		}
		err := h.checkHost(env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("key file %04o %q: %v", tc.mode, tc.content, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "--gossip-key-file: ")):
			t.Errorf("key file %04o %q: %v; want an error of --gossip-key-file with %q", tc.mode, tc.content, err, tc.want)
		}
	}
}

// newShell runs script with sh, with args as $1..., and returns its stdout.
func newShell(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...).Output()
	return string(out), err
}

func TestInstallEnvFileReadsBackInSh(t *testing.T) {
	labels := "a=x$HOME,b=`id`,c=q\"'\\\\d,e=#f"
	s := installSpec{kind: Agent, etcd: []string{"http://10.0.0.1:2379"}, cluster: "c", labels: labels}
	p := filepath.Join(t.TempDir(), "agent.env")
	if err := os.WriteFile(p, s.envFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	// systemd's EnvironmentFile= unquotes double quotes as sh does.
	out, err := newShell(t, `. "$1" && printf '%s|%s|%s' "$PROCFLEET_LABELS" "$PROCFLEET_ETCD" "$PROCFLEET_NODE"`, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := labels + "|http://10.0.0.1:2379|"; out != want {
		t.Errorf("sh reads %q, want %q", out, want)
	}
}

// TestUsageErrors checks which errors match ErrUsage: the caller's (a run
// by another user than root on this host), not the host's (no binary).
func TestUsageErrors(t *testing.T) {
	env := testEnv(t, writeExe(t, "binary\n"))
	env.Euid = func() int { return 1000 }
	c := clustered(Agent, "")
	c.Node = "web-1"
	_, err := runInstall(t, env, c)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "run them as root") {
		t.Errorf("install by uid 1000: %v, want a usage error that asks for root", err)
	}
	var out strings.Builder
	err = Uninstall(t.Context(), UninstallConfig{Kind: Relay}, env, &out)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "run them as root") {
		t.Errorf("uninstall by uid 1000: %v, want a usage error that asks for root", err)
	}
	if err := Uninstall(t.Context(), UninstallConfig{Kind: "bogus", Root: t.TempDir()}, env, &out); !errors.Is(err, ErrUsage) {
		t.Errorf("uninstall bogus: %v, want a usage error", err)
	}

	env = testEnv(t, "")
	env.Executable = func() (string, error) { return "", errors.New("no such binary") }
	c.Root = t.TempDir()
	_, err = runInstall(t, env, c)
	if err == nil || errors.Is(err, ErrUsage) || err.Error() != "cannot find the running binary to install: no such binary" {
		t.Errorf("install without a binary: %v, want the host's error, not a usage error", err)
	}
}
