package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallRealBinary runs install and uninstall as users do: every flag
// reaches the files, and a bad flag exits 2. What install writes is tested
// in deploy/install.
func TestInstallRealBinary(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	stdout, stderr, code := run(t, "install", "agent", "--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod", "--node", "web-1",
		"--labels", "zone=b,rack=a", "--listen", "127.0.0.1:19477", "--etcd-ca", ca, "--etcd-cert", "/etc/procfleet/etcd.pem",
		"--etcd-key", "/etc/procfleet/etcd-key.pem", "--etcd-user", "agent", "--etcd-password-file", "/etc/procfleet/etcd-password",
		"--gossip-key-file", "/etc/procfleet/gossip.key")
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
	files := readFiles(t, root, "etc/procfleet/agent.env", "etc/procfleet/agent.yaml")
	for _, l := range []string{`PROCFLEET_ETCD="http://10.0.0.1:2379"`, `PROCFLEET_CLUSTER="prod"`, `PROCFLEET_NODE="web-1"`,
		`PROCFLEET_LABELS="rack=a,zone=b"`, `PROCFLEET_ETCD_CA="` + ca + `"`, `PROCFLEET_ETCD_CERT="/etc/procfleet/etcd.pem"`,
		`PROCFLEET_ETCD_KEY="/etc/procfleet/etcd-key.pem"`, `PROCFLEET_ETCD_USER="agent"`,
		`PROCFLEET_ETCD_PASSWORD_FILE="/etc/procfleet/etcd-password"`, `PROCFLEET_GOSSIP_KEY_FILE="/etc/procfleet/gossip.key"`,
		`listen: "127.0.0.1:19477"`} {
		if !strings.Contains(files, "\n"+l+"\n") {
			t.Errorf("install agent: no line %s in:\n%s", l, files)
		}
	}
	if _, stderr, code = run(t, "install", "agent", "--root", root, "--etcd", "10.0.0.1", "--cluster", "prod"); code != 2 || !strings.Contains(stderr, "--etcd") {
		t.Errorf("bad --etcd: exit %d, stderr %q", code, stderr)
	}

	stdout, stderr, code = run(t, "install", "relay", "--root", root, "--upstream", "http://vm-1:8428/api/v1/import/prometheus",
		"--upstream", "http://vm-2:8428/api/v1/import/prometheus", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "procfleet-relay: dry run, nothing changed\n") {
		t.Fatalf("install relay --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/procfleet/relay.yaml")); err == nil {
		t.Errorf("install relay --dry-run wrote relay.yaml")
	}

	stdout, stderr, code = run(t, "uninstall", "agent", "--root", root, "--purge")
	if code != 0 || !strings.Contains(stdout, "procfleet-agent: uninstalled\n") {
		t.Fatalf("uninstall agent: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, p := range []string{"usr/local/bin/procfleet", "etc/procfleet", "var/lib/procfleet"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("uninstall agent --purge kept %s", p)
		}
	}
}

// readFiles returns the files at paths under root, each after a newline.
func readFiles(t *testing.T, root string, paths ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
		b.Write(data)
	}
	return b.String()
}
