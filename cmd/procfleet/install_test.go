package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// fakeSystem answers Check from state and records Run. Without state it
// fails the test on any call: installs under --root must not touch systemd.
type fakeSystem struct {
	t     *testing.T
	state map[string]bool // joined args of a Check: its answer
	ran   []string        // joined args of every Run
}

func (f *fakeSystem) Check(_ context.Context, args ...string) (bool, error) {
	if f.state == nil {
		f.t.Errorf("Check(%q) called; want no command", args)
	}
	return f.state[strings.Join(args, " ")], nil
}

func (f *fakeSystem) Run(_ context.Context, args ...string) error {
	if f.state == nil {
		f.t.Errorf("Run(%q) called; want no command", args)
	}
	f.ran = append(f.ran, strings.Join(args, " "))
	return nil
}

// testEnv returns an installEnv that installs exe, on a host named
// test-host where systemd runs.
func testEnv(t *testing.T, exe string) installEnv {
	return installEnv{
		executable:     func() (string, error) { return exe, nil },
		hostname:       func() (string, error) { return "test-host", nil },
		systemdRunning: func() bool { return true },
		euid:           func() int { return 0 },
		sys:            &fakeSystem{t: t},
	}
}

// writeExe writes a stand-in for the running binary and returns its path.
func writeExe(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "procfleet")
	if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// runInstall runs procfleet with args (install ... or uninstall ...) in
// env and returns what it printed.
func runInstall(t *testing.T, env installEnv, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "procfleet", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newInstallCmdEnv(env), newUninstallCmdEnv(env))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustInstall(t *testing.T, env installEnv, args ...string) string {
	t.Helper()
	out, err := runInstall(t, env, args...)
	if err != nil {
		t.Fatalf("procfleet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// tree returns every path under root, relative, with its mode.
func tree(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, content)
	}
}

func wantOutput(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// baseDirs are the directories of the system an install under --root
// creates and uninstall leaves.
var baseDirs = map[string]fs.FileMode{
	"usr": fs.ModeDir | 0o755, "usr/local": fs.ModeDir | 0o755, "usr/local/bin": fs.ModeDir | 0o755,
	"etc": fs.ModeDir | 0o755, "etc/systemd": fs.ModeDir | 0o755, "etc/systemd/system": fs.ModeDir | 0o755,
	"var": fs.ModeDir | 0o755, "var/lib": fs.ModeDir | 0o755,
}

const clusterArgs = "--etcd=http://10.0.0.1:2379,https://etcd-2.example:2379 --cluster=prod --node=web-1 --labels=zone=eu-1,rack=a$1\"b"

const wantAgentEnv = `# procfleet agent: cluster membership and etcd access, read by procfleet-agent.service.
# Written by "procfleet install agent"; running it again rewrites this file.
# etcd client URLs, comma-separated; empty runs standalone, with the
# upstreams of /etc/procfleet/agent.yaml.
PROCFLEET_ETCD="http://10.0.0.1:2379,https://etcd-2.example:2379"
# Cluster name: its keys are under /procfleet/NAME/.
PROCFLEET_CLUSTER="prod"
# Node name in the cluster; empty is the host name, lower-cased.
PROCFLEET_NODE="web-1"
# Labels registered with the node, k=v,k2=v2; config overrides select on them.
PROCFLEET_LABELS="rack=a\$1\"b,zone=eu-1"
# etcd TLS (CA bundle, client certificate and key) and user/password auth:
# files readable by the procfleet user, not under /home or /root.
PROCFLEET_ETCD_CA=""
PROCFLEET_ETCD_CERT=""
PROCFLEET_ETCD_KEY=""
PROCFLEET_ETCD_USER=""
PROCFLEET_ETCD_PASSWORD_FILE=""
`

const wantAgentYAML = `# procfleet agent: this host's settings, read by procfleet-agent.service.
# Written by "procfleet install agent"; running it again rewrites this file.
# Host-local keys only: every other key comes from the cluster config.
# Every key, its unit and default: deploy/agent.example.yaml.
listen: "127.0.0.1:9477"
spool:
  dir: /var/lib/procfleet/spool
`

func TestInstallAgentRoot(t *testing.T) {
	root, exe := t.TempDir(), writeExe(t, "binary v1\n")
	env := testEnv(t, exe)
	args := append([]string{"install", "agent", "--root", root}, strings.Fields(clusterArgs)...)
	out := mustInstall(t, env, args...)

	want := mergeModes(baseDirs, map[string]fs.FileMode{
		"usr/local/bin/procfleet":                    0o755,
		"etc/procfleet":                              fs.ModeDir | 0o755,
		"etc/procfleet/agent.yaml":                   0o644,
		"etc/procfleet/agent.env":                    0o644,
		"etc/systemd/system/procfleet-agent.service": 0o644,
		"var/lib/procfleet":                          fs.ModeDir | 0o750,
	})
	if got := tree(t, root); !mapsEqual(got, want) {
		t.Fatalf("installed tree:\n%v\nwant:\n%v", got, want)
	}
	wantFile(t, filepath.Join(root, "usr/local/bin/procfleet"), "binary v1\n", 0o755)
	wantFile(t, filepath.Join(root, "etc/procfleet/agent.yaml"), wantAgentYAML, 0o644)
	wantFile(t, filepath.Join(root, "etc/procfleet/agent.env"), wantAgentEnv, 0o644)
	wantFile(t, filepath.Join(root, "etc/systemd/system/procfleet-agent.service"), agentUnit, 0o644)
	wantOutput(t, out,
		"created        "+filepath.Join(root, "usr/local/bin/procfleet")+" (file, mode 0755)\n",
		"created        "+filepath.Join(root, "var/lib/procfleet")+" (directory, mode 0750)\n",
		"systemd and users left alone (--root given)",
		"  systemctl enable --now procfleet-agent\n",
		"procfleet-agent: installed\n")

	// A second run changes nothing, not even a time stamp.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for p := range want {
		if err := os.Chtimes(filepath.Join(root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	out = mustInstall(t, env, args...)
	for p := range want {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("second run touched %s (%v)", p, err)
		}
	}
	if got := tree(t, root); !mapsEqual(got, want) {
		t.Fatalf("tree after the second run:\n%v\nwant:\n%v", got, want)
	}
	for _, p := range []string{"usr/local/bin/procfleet", "etc/procfleet", "etc/procfleet/agent.yaml", "etc/procfleet/agent.env",
		"etc/systemd/system/procfleet-agent.service", "var/lib/procfleet"} {
		wantOutput(t, out, "unchanged      "+filepath.Join(root, p)+"\n")
	}
	wantOutput(t, out, "procfleet-agent: nothing changed\n")
	if strings.Contains(out, "created") || strings.Contains(out, "updated") || strings.Contains(out, "systemctl") {
		t.Errorf("second run reports changes:\n%s", out)
	}
}

func mergeModes(ms ...map[string]fs.FileMode) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func mapsEqual(a, b map[string]fs.FileMode) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestInstallUpgradeAndRepair(t *testing.T) {
	root := t.TempDir()
	args := func(extra ...string) []string {
		return append([]string{"install", "agent", "--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod"}, extra...)
	}
	mustInstall(t, testEnv(t, writeExe(t, "binary v1\n")), args()...)

	// A new binary replaces the old one; nothing else changes.
	out := mustInstall(t, testEnv(t, writeExe(t, "binary v2, longer\n")), args()...)
	bin := filepath.Join(root, "usr/local/bin/procfleet")
	wantFile(t, bin, "binary v2, longer\n", 0o755)
	wantOutput(t, out, "updated        "+bin+" (content differs)\n", "unchanged      "+filepath.Join(root, "etc/procfleet/agent.env"),
		"  systemctl try-restart procfleet-agent\n")

	// Same size, other content; a file whose mode was changed; new labels.
	exe := writeExe(t, "binary v3, longer\n")
	cfg := filepath.Join(root, "etc/procfleet/agent.yaml")
	if err := os.Chmod(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustInstall(t, testEnv(t, exe), args("--labels", "zone=b")...)
	wantFile(t, bin, "binary v3, longer\n", 0o755)
	wantFile(t, cfg, wantAgentYAML, 0o644)
	wantOutput(t, out, "updated        "+bin+" (content differs)\n",
		"updated        "+cfg+" (mode 0600 -> 0644)\n",
		"updated        "+filepath.Join(root, "etc/procfleet/agent.env")+" (content differs)\n")
	if env, _ := os.ReadFile(filepath.Join(root, "etc/procfleet/agent.env")); !strings.Contains(string(env), "\nPROCFLEET_LABELS=\"zone=b\"\n") {
		t.Errorf("agent.env lacks the new labels:\n%s", env)
	}
}

func TestInstallDryRun(t *testing.T) {
	root, exe := t.TempDir(), writeExe(t, "binary v1\n")
	env := testEnv(t, exe)
	args := []string{"install", "agent", "--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod"}
	out := mustInstall(t, env, append(args, "--dry-run")...)
	if got := tree(t, root); len(got) != 0 {
		t.Fatalf("dry run wrote %v", got)
	}
	wantOutput(t, out, "dry run: install agent changes nothing; it would:\n",
		"would create   "+filepath.Join(root, "usr/local/bin/procfleet")+" (file, mode 0755)\n",
		"would create   "+filepath.Join(root, "etc/procfleet/agent.env")+" (file, mode 0644)\n",
		"would create   "+filepath.Join(root, "etc/systemd/system/procfleet-agent.service")+" (file, mode 0644)\n",
		"would create   "+filepath.Join(root, "var/lib/procfleet")+" (directory, mode 0750)\n",
		"  systemctl enable --now procfleet-agent\n",
		"procfleet-agent: dry run, nothing changed\n")

	mustInstall(t, env, args...)
	before := tree(t, root)
	envFile := filepath.Join(root, "etc/procfleet/agent.env")
	old, _ := os.ReadFile(envFile)
	out = mustInstall(t, env, append(args, "--node", "other", "--dry-run")...)
	wantOutput(t, out, "would update   "+envFile+" (content differs)\n", "unchanged      "+filepath.Join(root, "etc/procfleet/agent.yaml"))
	if now, _ := os.ReadFile(envFile); !bytes.Equal(now, old) || !mapsEqual(tree(t, root), before) {
		t.Error("dry run changed the install")
	}
}

func TestInstallRejectsBadInput(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	f := func(want string, args ...string) {
		t.Helper()
		out, err := runInstall(t, env, append([]string{"install", "agent", "--root", root}, args...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) {
			t.Fatalf("install %q: error %v, want a usage error\n%s", args, err, out)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("install %q: error %q does not name %s", args, err, want)
		}
		if got := tree(t, root); len(got) != 0 {
			t.Fatalf("install %q failed after writing %v", args, got)
		}
	}
	c := []string{"--etcd", "http://10.0.0.1:2379", "--cluster", "prod"}
	f("--etcd", "--cluster", "prod")
	f("--etcd", "--etcd", "10.0.0.1:2379", "--cluster", "prod")
	f("--etcd", "--etcd", "http://10.0.0.1", "--cluster", "prod")
	f("--etcd", "--etcd", "http://10.0.0.1:2379,ftp://x:1", "--cluster", "prod")
	f("--etcd", "--etcd", "http://user:secret@10.0.0.1:2379", "--cluster", "prod")
	f("--cluster", "--etcd", "http://10.0.0.1:2379")
	f("--cluster", "--etcd", "http://10.0.0.1:2379", "--cluster", "Prod")
	f("--node", append(c, "--node", "Web_1")...)
	f("--node", append(c, "--node", "-web")...)
	f("--labels", append(c, "--labels", "zone")...)
	f("--labels", append(c, "--labels", "1zone=a")...)
	f("--labels", append(c, "--labels", "zone=a b")...)
	f("--upstream", append(c, "--upstream", "http://vm:8428/api/v1/import/prometheus")...)
	f("--listen", append(c, "--listen", "127.0.0.1:80")...)
	f("--listen", append(c, "--listen", "localhost")...)
	f("--etcd-cert", append(c, "--etcd-cert", "/etc/procfleet/cert.pem")...)
	f("--etcd-user", append(c, "--etcd-user", "procfleet")...)
	f("--etcd-ca", append(c, "--etcd-ca", "ca.pem")...)
	f("--etcd-ca", append(c, "--etcd-ca", "/root/ca.pem")...)
	f("--upstream", "--upstream", "vm:8428")
	f("--upstream", "--upstream", "http://user:pw@vm:8428/api/v1/import/prometheus")
	f("--node", "--upstream", "http://vm:8428/api/v1/import/prometheus", "--node", "web-1")
}

func TestInstallNodeFromHostName(t *testing.T) {
	env := testEnv(t, writeExe(t, "binary\n"))
	env.hostname = func() (string, error) { return "-Web", nil }
	// The host name is checked only for this host, not under --root.
	f := installFlags{etcd: "http://10.0.0.1:2379", cluster: "prod", listen: defaultListen(kindAgent)}
	if _, err := f.spec(kindAgent, env); err == nil || !strings.Contains(err.Error(), `--node: not given, and the host name "-Web"`) {
		t.Errorf("host name -Web: %v", err)
	}
	env.hostname = func() (string, error) { return "WEB-1", nil }
	if _, err := f.spec(kindAgent, env); err != nil {
		t.Errorf("host name WEB-1 (node web-1): %v", err)
	}
	f.root = "/mnt"
	env.hostname = func() (string, error) { return "-Web", nil }
	if _, err := f.spec(kindAgent, env); err != nil {
		t.Errorf("--root: %v", err)
	}
}

func TestInstallEnvFileReadsBackInSh(t *testing.T) {
	labels := "a=x$HOME,b=`id`,c=q\"'\\\\d,e=#f"
	s := installSpec{kind: kindAgent, etcd: []string{"http://10.0.0.1:2379"}, cluster: "c", labels: labels}
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

func TestInstallRelay(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	mustInstall(t, env, "install", "relay", "--root", root, "--upstream", "http://vm-1:8428/api/v1/import/prometheus",
		"--upstream", "http://vm-2:8428/api/v1/import/prometheus", "--listen", "10.0.0.5:9478")
	wantFile(t, filepath.Join(root, "etc/procfleet/relay.yaml"), `# procfleet relay: this host's settings, read by procfleet-relay.service.
# Written by "procfleet install relay"; running it again rewrites this file.
# Every key, its unit and default: deploy/relay.example.yaml.
listen: "10.0.0.5:9478"
wal:
  dir: /var/lib/procfleet/relay
ship:
  upstreams:
    - "http://vm-1:8428/api/v1/import/prometheus"
    - "http://vm-2:8428/api/v1/import/prometheus"
`, 0o644)
	wantFile(t, filepath.Join(root, "etc/systemd/system/procfleet-relay.service"), relayUnit, 0o644)
	relayEnv, _ := os.ReadFile(filepath.Join(root, "etc/procfleet/relay.env"))
	if !strings.Contains(string(relayEnv), "\nPROCFLEET_ETCD=\"\"\n") {
		t.Errorf("standalone relay.env sets PROCFLEET_ETCD:\n%s", relayEnv)
	}

	// Clustered, the upstreams go and the membership comes.
	out := mustInstall(t, env, "install", "relay", "--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod", "--node", "relay-1")
	wantFile(t, filepath.Join(root, "etc/procfleet/relay.yaml"), `# procfleet relay: this host's settings, read by procfleet-relay.service.
# Written by "procfleet install relay"; running it again rewrites this file.
# Host-local keys only: every other key comes from the cluster config.
# Every key, its unit and default: deploy/relay.example.yaml.
listen: "0.0.0.0:9478"
wal:
  dir: /var/lib/procfleet/relay
`, 0o644)
	wantOutput(t, out, "unchanged      "+filepath.Join(root, "etc/systemd/system/procfleet-relay.service"))
	relayEnv, _ = os.ReadFile(filepath.Join(root, "etc/procfleet/relay.env"))
	for _, l := range []string{"PROCFLEET_ETCD=\"http://10.0.0.1:2379\"", "PROCFLEET_CLUSTER=\"prod\"", "PROCFLEET_NODE=\"relay-1\""} {
		if !strings.Contains(string(relayEnv), "\n"+l+"\n") {
			t.Errorf("relay.env lacks %s:\n%s", l, relayEnv)
		}
	}
	if _, err := runInstall(t, env, "install", "relay", "--root", root, "--listen", "0.0.0.0:443", "--upstream", "http://vm:8428/x"); err == nil ||
		!strings.Contains(err.Error(), "--listen") {
		t.Errorf("relay on port 443: %v", err)
	}
}

func TestInstallRealBinary(t *testing.T) {
	root := t.TempDir()
	stdout, stderr, code := run(t, "install", "agent", "--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod", "--node", "web-1")
	if code != 0 {
		t.Fatalf("install agent: exit %d\n%s%s", code, stdout, stderr)
	}
	want, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "usr/local/bin/procfleet"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed binary differs from %s (%v)", binary, err)
	}
	if _, stderr, code = run(t, "install", "agent", "--root", root, "--etcd", "10.0.0.1", "--cluster", "prod"); code != 2 || !strings.Contains(stderr, "--etcd") {
		t.Errorf("bad --etcd: exit %d, stderr %q", code, stderr)
	}
}

func TestInstallEtcdAuth(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, env, "install", "agent", "--root", root, "--etcd", "https://10.0.0.1:2379", "--cluster", "prod",
		"--etcd-ca", ca, "--etcd-cert", "/etc/procfleet/etcd.pem", "--etcd-key", "/etc/procfleet/etcd-key.pem",
		"--etcd-user", "agent", "--etcd-password-file", "/etc/procfleet/etcd-password")
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
	// For this host (no --root), the files must exist.
	f := installFlags{etcd: "https://10.0.0.1:2379", cluster: "prod", node: "web-1", listen: defaultListen(kindAgent)}
	f.auth.ca = ca
	if _, err := f.spec(kindAgent, env); err != nil {
		t.Errorf("existing --etcd-ca: %v", err)
	}
	f.auth.ca = filepath.Join(dir, "missing.pem")
	if _, err := f.spec(kindAgent, env); err == nil || !strings.Contains(err.Error(), "--etcd-ca") {
		t.Errorf("missing --etcd-ca: %v", err)
	}
}
