package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// runEnv runs procfleet with args and exactly the PROCFLEET_* variables of
// env (none inherited), and returns stdout, stderr and the exit code. A
// command still running after 30 s (an agent that went ahead) is killed
// and fails the test.
func runEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROCFLEET_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = append(cmd.Env, "EDITOR=false") // config edit never waits for a person
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("procfleet %s still running after 30 s; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestClusterIsRequired: no command that reads or writes a cluster's keys
// picks a cluster name the user did not give. Before, --cluster defaulted
// to "default", so a forgotten flag read and wrote another cluster.
func TestClusterIsRequired(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	dir := t.TempDir()
	doc := filepath.Join(dir, "cluster.yaml")
	writeFile(t, doc, "upstreams: [{name: vm, url: http://127.0.0.1:8428/api/v1/import/prometheus, capacity: 1MiB/s}]\nring: {fallbacks: 0}\n")
	const want = "--cluster is required (or $PROCFLEET_CLUSTER)"
	for _, args := range [][]string{
		{"cluster", "bootstrap", ep, "--config", doc},
		{"config", "get", ep},
		{"config", "set", ep, "-f", doc},
		{"config", "history", ep},
		{"config", "rollback", ep, "1"},
		{"config", "edit", ep},
		{"status", ep},
		{"agent", ep, "--listen", "127.0.0.1:0"},
		{"relay", ep, "--data-dir", filepath.Join(dir, "wal"), "--listen", "127.0.0.1:0"},
	} {
		_, stderr, code := runEnv(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%s without --cluster: exit %d, stderr %q; want exit 2 and %q", strings.Join(args[:2], " "), code, stderr, want)
		}
	}
	// Nothing was written under any cluster.
	resp, err := etcd.Client(t).Get(t.Context(), "/procfleet/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("commands without a cluster wrote %d keys, first %s", len(resp.Kvs), resp.Kvs[0].Key)
	}

	// $PROCFLEET_CLUSTER and $PROCFLEET_ETCD stand for the flags.
	env := []string{"PROCFLEET_CLUSTER=fromenv", "PROCFLEET_ETCD=" + strings.Join(etcd.Endpoints, ",")}
	if _, stderr, code := runEnv(t, env, "cluster", "bootstrap", "--config", doc); code != 0 {
		t.Fatalf("bootstrap with the cluster from the environment: exit %d: %s", code, stderr)
	}
	if out, stderr, code := runEnv(t, nil, "config", "get", ep, "--cluster", "fromenv"); code != 0 || !strings.Contains(out, "capacity: 1MiB/s") {
		t.Fatalf("config get --cluster fromenv: exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// TestEtcdFlagsFromEnvironment: the etcd TLS and auth settings can come
// from the environment like --etcd and --cluster (an installed unit keeps
// them in its environment file), and the agent's help shows no etcd
// default that it would not use.
func TestEtcdFlagsFromEnvironment(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	base := []string{"PROCFLEET_CLUSTER=c", "PROCFLEET_ETCD=" + strings.Join(etcd.Endpoints, ",")}
	missing := filepath.Join(t.TempDir(), "missing")
	f := func(want string, kvs ...string) {
		t.Helper()
		_, stderr, code := runEnv(t, append(base, kvs...), "config", "get")
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want an error with %q", kvs, code, stderr, want)
		}
	}
	f(missing+"-ca.pem", "PROCFLEET_ETCD_CA="+missing+"-ca.pem")
	f("certificate and key go together", "PROCFLEET_ETCD_CERT="+missing+"-cert.pem")
	f("cannot load etcd client certificate", "PROCFLEET_ETCD_CERT="+missing+"-cert.pem", "PROCFLEET_ETCD_KEY="+missing+"-key.pem")
	f("needs a password file", "PROCFLEET_ETCD_USER=ops")
	f(missing+"-pw", "PROCFLEET_ETCD_USER=ops", "PROCFLEET_ETCD_PASSWORD_FILE="+missing+"-pw")
	f("$PROCFLEET_ETCD_DIAL_TIMEOUT \"soon\" is not accepted", "PROCFLEET_ETCD_DIAL_TIMEOUT=soon")

	for _, cmd := range []string{"agent", "relay"} {
		help, _, _ := runEnv(t, nil, cmd, "--help")
		for _, line := range strings.Split(help, "\n") {
			if strings.Contains(line, "--etcd string") && strings.Contains(line, "(default") {
				t.Errorf("%s --help shows an etcd default it does not use: %q", cmd, line)
			}
		}
	}
	help, _, _ := runEnv(t, nil, "status", "--help")
	if !strings.Contains(help, `(default "http://127.0.0.1:2379")`) {
		t.Errorf("status --help lacks the local etcd default:\n%s", help)
	}
}
