package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// runFor runs procfleet with args for at most d and returns its stderr,
// exit code and how long it ran; a run that outlives d is killed and
// reported as code -1.
func runFor(t *testing.T, d time.Duration, args ...string) (string, int, time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return stderr.String(), code, time.Since(start)
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return stderr.String(), -1, time.Since(start)
	}
}

// etcdRevision returns etcd's current revision.
func etcdRevision(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/procfleet/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// holdPort binds addr for TCP and UDP until the test ends, as another
// process on the host would.
func holdPort(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
}

// TestClusteredTakenPorts starts clustered agents and relays whose listen
// or gossip address is taken (three agents on one host on the default
// gossip port, say): each exits non-zero within seconds, naming the
// address and the flag to change, and etcd's revision has not moved: it
// never registered. Before, the agent waited for its first assignment
// forever, silently, registered in etcd when only --listen was taken.
func TestClusteredTakenPorts(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, etcd.Endpoints)
	ep, cl := "--etcd="+strings.Join(etcd.Endpoints, ","), "--cluster=ports"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfgFile, "upstreams: [{name: vm, url: \"http://127.0.0.1:1/api/v1/import/prometheus\", capacity: 1MiB/s}]\nring: {fallbacks: 0}\n")
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	taken := testenv.FreeAddr(t)
	holdPort(t, taken)
	free := func() string { return testenv.FreeAddr(t) }
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"agent listen", []string{"agent", "--node", "a1", "--procfs-root", fixture, "--listen", taken, "--gossip-listen", free()},
			"cannot listen on " + taken + " (--listen): address already in use; pick another port with --listen"},
		{"agent gossip", []string{"agent", "--node", "a2", "--procfs-root", fixture, "--listen", free(), "--gossip-listen", taken},
			"cannot listen on " + taken + " (--gossip-listen): address already in use; pick another port with --gossip-listen"},
		{"relay listen", []string{"relay", "--node", "r1", "--data-dir", t.TempDir(), "--listen", taken, "--gossip-listen", free()},
			"cannot listen on " + taken + " (--listen): address already in use; pick another port with --listen"},
		{"relay gossip", []string{"relay", "--node", "r2", "--data-dir", t.TempDir(), "--listen", free(), "--gossip-listen", taken},
			"cannot listen on " + taken + " (--gossip-listen): address already in use; pick another port with --gossip-listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rev := etcdRevision(t, cli)
			stderr, code, took := runFor(t, 20*time.Second, append(tt.args, ep, cl, "--lease-ttl", "2s")...)
			if code == -1 {
				t.Fatalf("still running after %v:\n%s", took, stderr)
			}
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d after %v; want non-zero with %q in:\n%s", code, took, tt.want, stderr)
			}
			if took > 10*time.Second {
				t.Errorf("took %v to fail", took)
			}
			if got := etcdRevision(t, cli); got != rev {
				t.Errorf("etcd moved from revision %d to %d: the member wrote something", rev, got)
			}
		})
	}
}

// waitBody polls GET url until it answers with code and a body holding
// want.
func waitBody(t *testing.T, url string, code int, want string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "GET "+url, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != code || !strings.Contains(string(body), want) {
			return fmt.Errorf("%s %q; want %d with %q", resp.Status, body, code, want)
		}
		return nil
	})
}

// TestClusteredAgentWaitsVisibly runs a clustered agent with no config in
// etcd, then one with no etcd at all: each answers /healthz, says in
// /readyz why it has no settings, and stops within seconds of SIGTERM.
func TestClusteredAgentWaitsVisibly(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	for _, tt := range []struct {
		name, endpoints, want string
	}{
		{"no config", strings.Join(etcd.Endpoints, ","), "no cluster config in etcd at /procfleet/empty/config"},
		{"no etcd", "http://" + testenv.FreeAddr(t), "cannot reach etcd at"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := testenv.FreeAddr(t)
			cmd := exec.Command(binary, "agent", "--etcd", tt.endpoints, "--cluster", "empty", "--node", "w1",
				"--procfs-root", fixture, "--listen", addr, "--gossip-listen", "127.0.0.1:0", "--lease-ttl", "2s")
			var stderr testenv.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
			waitBody(t, "http://"+addr+"/healthz", http.StatusOK, "ok")
			waitBody(t, "http://"+addr+"/readyz", http.StatusServiceUnavailable, tt.want)
			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				done <- err
				if err != nil {
					t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10s after SIGTERM:\n%s", stderr.String())
			}
			t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClusteredAgentLogsWhyItWaits runs the clustered agent in-process
// with no etcd and no saved state, the log interval shortened: it logs
// why it has no settings, again and again, and returns nil once stopped.
func TestClusteredAgentLogsWhyItWaits(t *testing.T) {
	defer func(d time.Duration) { pendingLogEvery = d }(pendingLogEvery)
	pendingLogEvery = 200 * time.Millisecond
	local := config.DefaultAgent()
	local.Listen = testenv.FreeAddr(t)
	local.Spool.Dir = t.TempDir()
	ef := etcdFlags{endpoints: "http://" + testenv.FreeAddr(t), cluster: "c", dialTimeout: time.Second}
	mf := memberFlags{node: "w1", gossipListen: "127.0.0.1:0", leaseTTL: 2 * time.Second}
	var logs testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runClustered(ctx, local, ef, mf, slog.New(slog.NewTextHandler(&logs, nil))) }()
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "two log lines saying etcd cannot be reached", func() error {
		if n := strings.Count(logs.String(), `msg="no settings from the cluster yet: scanning nothing; /readyz says why" why="cannot reach etcd at`); n < 2 {
			return fmt.Errorf("%d lines:\n%s", n, logs.String())
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runClustered did not return within 10s of its context ending")
	}
}

// TestClusteredAgentStartsWithoutEtcd runs a clustered agent against a
// real VictoriaMetrics until it has saved its state in its spool
// directory, stops it and etcd, and starts it again: it scans and ships
// from the saved state (its samples, newer than the restart, land in
// VictoriaMetrics), answers /readyz, and once etcd is back it registers
// and takes a new config revision. Before, it waited for etcd with
// nothing scanned.
func TestClusteredAgentStartsWithoutEtcd(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	vm := testenv.StartVM(t)
	ep, cl := "--etcd="+strings.Join(etcd.Endpoints, ","), "--cluster=saved"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	doc := func(flush string) string {
		return "upstreams: [{name: vm, url: \"" + vm.ImportURL + "\", capacity: 1MiB/s}]\nring: {fallbacks: 0}\nagents:\n  compress: {flush_age: " + flush + "}\n"
	}
	writeFile(t, cfgFile, doc("250ms"))
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	spool, addr := t.TempDir(), testenv.FreeAddr(t)
	agent := newBinProc(t, "agent", addr, func() []string {
		return []string{"agent", ep, cl, "--node", "s1", "--hostname", "s1", "--lease-ttl", "2s", "--procfs-root", fixture,
			"--spool-dir", spool, "--listen", addr, "--gossip-listen", "127.0.0.1:0"}
	})
	agent.start()
	state := filepath.Join(spool, "cluster-state.json")
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the saved state", func() error {
		fi, err := os.Stat(state)
		if err == nil && fi.Mode().Perm() != 0o600 {
			err = fmt.Errorf("mode %v; want 0600", fi.Mode())
		}
		return err
	})
	agent.stopWith(syscall.SIGTERM)

	etcd.Stop()
	restarted := time.Now()
	agent.start()
	waitBody(t, "http://"+addr+"/readyz", http.StatusOK, "ok")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "samples scanned after the restart without etcd", func() error {
		vm.Flush(t)
		series, err := vm.TryExport(`node_load1{instance="s1"}`)
		if err != nil {
			return err
		}
		if len(series) != 1 || series[0].Timestamps[len(series[0].Timestamps)-1] <= restarted.UnixMilli() {
			return fmt.Errorf("%d series, none newer than the restart", len(series))
		}
		return nil
	})
	if !strings.Contains(agent.log(), "starting on the saved cluster state until etcd answers") {
		t.Errorf("the log does not say the agent runs on its saved state:\n%s", agent.log())
	}

	// The revision saved before the new one is written: read after, it
	// may already be the new one, which the agent saves as it applies it.
	var saved struct{ Revision int64 }
	if data, err := os.ReadFile(state); err != nil || json.Unmarshal(data, &saved) != nil {
		t.Fatalf("saved state: %v", err)
	}
	etcd.Restart(t)
	writeFile(t, cfgFile, doc("300ms"))
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the config written after etcd returned", func() error {
		_, stderr, code := run(t, "config", "set", "-f", cfgFile, ep, cl)
		if code != 0 {
			return fmt.Errorf("config set: %s", stderr)
		}
		return nil
	})
	testenv.Eventually(t, 40*time.Second, 500*time.Millisecond, "the agent registered at the new revision", func() error {
		out, stderr, code := run(t, "status", ep, cl, "-o", "json")
		if code != 0 {
			return fmt.Errorf("status: %s", stderr)
		}
		var st clusterStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if st.ConfigRevision == saved.Revision || len(st.Agents) != 1 || st.Agents[0].ConfigRevision != st.ConfigRevision {
			return fmt.Errorf("want s1 at a revision after %d: %s", saved.Revision, out)
		}
		return nil
	})
	if !agent.running() {
		t.Fatal("the agent exited")
	}
}

// TestGossipKeyFileFlag reads a key file through the flag, and refuses a
// key file every user may read.
func TestGossipKeyFileFlag(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "gossip.key")
	writeFile(t, key, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))+"\n")
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	mf := memberFlags{gossipListen: "127.0.0.1:0", gossipKeyFile: key}
	gc, err := mf.gossipConfig()
	if err != nil || string(gc.SecretKey) != "0123456789abcdef" {
		t.Fatalf("gossipConfig = %q, %v", gc.SecretKey, err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, code, _ := runFor(t, 20*time.Second, "agent", "--etcd", "http://127.0.0.1:1", "--cluster", "k", "--gossip-key-file", key)
	if code != 2 || !strings.Contains(stderr, "--gossip-key-file: gossip key file "+key+" has mode 0644") {
		t.Errorf("a world-readable key file: exit %d, %s", code, stderr)
	}
}
