package install

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deployUnit returns the unit file of deploy/systemd as it is on disk:
// what install must write, byte for byte.
func deployUnit(t *testing.T, kind Kind) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "systemd", serviceName(kind)+".service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentCfg is the clustered agent of wantAgentEnv and wantAgentYAML.
func agentCfg(root string) Config {
	c := clustered(Agent, root)
	c.Etcd = "http://10.0.0.1:2379,https://etcd-2.example:2379"
	c.Node, c.Labels = "web-1", "zone=eu-1,rack=a$1\"b"
	return c
}

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
	out := mustInstall(t, env, agentCfg(root))

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
	wantFile(t, filepath.Join(root, "etc/systemd/system/procfleet-agent.service"), deployUnit(t, Agent), 0o644)
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
	out = mustInstall(t, env, agentCfg(root))
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

func TestInstallUpgradeAndRepair(t *testing.T) {
	root := t.TempDir()
	cfg := clustered(Agent, root)
	mustInstall(t, testEnv(t, writeExe(t, "binary v1\n")), cfg)

	// A new binary replaces the old one; nothing else changes.
	out := mustInstall(t, testEnv(t, writeExe(t, "binary v2, longer\n")), cfg)
	bin := filepath.Join(root, "usr/local/bin/procfleet")
	wantFile(t, bin, "binary v2, longer\n", 0o755)
	wantOutput(t, out, "updated        "+bin+" (content differs)\n", "unchanged      "+filepath.Join(root, "etc/procfleet/agent.env"),
		"  systemctl try-restart procfleet-agent\n")

	// Same size, other content; a file whose mode was changed; new labels.
	exe := writeExe(t, "binary v3, longer\n")
	cfgFile := filepath.Join(root, "etc/procfleet/agent.yaml")
	if err := os.Chmod(cfgFile, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Labels = "zone=b"
	out = mustInstall(t, testEnv(t, exe), cfg)
	wantFile(t, bin, "binary v3, longer\n", 0o755)
	wantFile(t, cfgFile, wantAgentYAML, 0o644)
	wantOutput(t, out, "updated        "+bin+" (content differs)\n",
		"updated        "+cfgFile+" (mode 0600 -> 0644)\n",
		"updated        "+filepath.Join(root, "etc/procfleet/agent.env")+" (content differs)\n")
	if env, _ := os.ReadFile(filepath.Join(root, "etc/procfleet/agent.env")); !strings.Contains(string(env), "\nPROCFLEET_LABELS=\"zone=b\"\n") {
		t.Errorf("agent.env lacks the new labels:\n%s", env)
	}
}

func TestInstallDryRun(t *testing.T) {
	root, exe := t.TempDir(), writeExe(t, "binary v1\n")
	env := testEnv(t, exe)
	cfg := clustered(Agent, root)
	dry := cfg
	dry.DryRun = true
	out := mustInstall(t, env, dry)
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

	mustInstall(t, env, cfg)
	before := tree(t, root)
	envFile := filepath.Join(root, "etc/procfleet/agent.env")
	old, _ := os.ReadFile(envFile)
	dry.Node = "other"
	out = mustInstall(t, env, dry)
	wantOutput(t, out, "would update   "+envFile+" (content differs)\n", "unchanged      "+filepath.Join(root, "etc/procfleet/agent.yaml"))
	if now, _ := os.ReadFile(envFile); !bytes.Equal(now, old) || !mapsEqual(tree(t, root), before) {
		t.Error("dry run changed the install")
	}
}

func TestInstallRelay(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	cfg := DefaultConfig(Relay)
	cfg.Root, cfg.Listen = root, "10.0.0.5:9478"
	cfg.Upstreams = []string{"http://vm-1:8428/api/v1/import/prometheus", "http://vm-2:8428/api/v1/import/prometheus"}
	mustInstall(t, env, cfg)
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
	wantFile(t, filepath.Join(root, "etc/systemd/system/procfleet-relay.service"), deployUnit(t, Relay), 0o644)
	relayEnv, _ := os.ReadFile(filepath.Join(root, "etc/procfleet/relay.env"))
	if !strings.Contains(string(relayEnv), "\nPROCFLEET_ETCD=\"\"\n") {
		t.Errorf("standalone relay.env sets PROCFLEET_ETCD:\n%s", relayEnv)
	}

	// Clustered, the upstreams go and the membership comes.
	cl := clustered(Relay, root)
	cl.Node = "relay-1"
	out := mustInstall(t, env, cl)
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
	cfg.Listen, cfg.Upstreams = "0.0.0.0:443", []string{"http://vm:8428/x"}
	if _, err := runInstall(t, env, cfg); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("relay on port 443: %v", err)
	}
}
