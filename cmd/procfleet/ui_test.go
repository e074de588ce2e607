package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// TestUICommand runs `procfleet ui` as an operator would: it says where
// the page is, serves the cluster's view there (members registered after
// it started included), and stops with exit 0 on Ctrl-C; without
// --cluster it is a usage error.
func TestUICommand(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep, cl := "--etcd="+strings.Join(etcd.Endpoints, ","), "--cluster=uicmd"
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfgFile, "upstreams:\n  - {name: vm-a, url: \"http://127.0.0.1:1/api/v1/import/prometheus\", capacity: 1MiB/s}\nring: {fallbacks: 0}\n")
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", cfgFile); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := run(t, "ui", ep); code != 2 || !strings.Contains(stderr, "--cluster is required") {
		t.Fatalf("ui without --cluster: exit %d, %s", code, stderr)
	}

	cmd := newCmd(t, "ui", ep, cl, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	banner, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no banner: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	_, rest, ok := strings.Cut(banner, "http://")
	url, _, _ := strings.Cut(rest, " ")
	if !ok || !strings.HasPrefix(banner, `procfleet ui: cluster "uicmd" at http://127.0.0.1:`) {
		t.Fatalf("banner %q does not say where the page is", banner)
	}
	url = "http://" + url
	if page, err := tryGet(url); err != nil || !strings.Contains(page, "/static/app.js") {
		t.Fatalf("GET %s: %v\n%s", url, err, page)
	}
	agent := newCmd(t, "agent", ep, cl, "--node", "ui-n1", "--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0",
		"--procfs-root", filepath.Join("..", "..", "testdata", "fixtures", "proc"), "--log-level", "warn")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "ui-n1 on the page's view", func() error {
		body, err := tryGet(url + "api/view")
		if err != nil {
			return err
		}
		var p struct {
			View struct {
				Agents []struct {
					Node      string   `json:"node"`
					Upstreams []string `json:"upstreams"`
				} `json:"agents"`
			} `json:"view"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return err
		}
		if len(p.View.Agents) != 1 || p.View.Agents[0].Node != "ui-n1" || len(p.View.Agents[0].Upstreams) == 0 {
			return fmt.Errorf("agents %+v", p.View.Agents)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ui exited with %v after Ctrl-C", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ui did not stop within 15s of Ctrl-C")
	}
}
