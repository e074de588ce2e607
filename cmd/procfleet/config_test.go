package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

func TestClusterConfigCommands(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=cmdtest"
	mustRun := func(args ...string) string {
		t.Helper()
		out, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("procfleet %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	failRun := func(want string, args ...string) {
		t.Helper()
		_, stderr, code := run(t, args...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Fatalf("procfleet %s: exit %d, stderr %q; want failure with %q", strings.Join(args, " "), code, stderr, want)
		}
	}

	// bootstrap, refuse to overwrite, force.
	mustRun("cluster", "bootstrap", ep, cl, "--upstream", "http://127.0.0.1:8428/api/v1/import/prometheus")
	failRun("already has a config", "cluster", "bootstrap", ep, cl, "--upstream", "http://127.0.0.1:9/x")
	failRun("want --config FILE or at least one --upstream", "cluster", "bootstrap", ep, cl)

	got := mustRun("config", "get", ep, cl)
	c, err := config.ParseCluster([]byte(got))
	if err != nil || len(c.Upstreams) != 1 || c.Upstreams[0].Name != "up-1" {
		t.Fatalf("config get returned %v, %v:\n%s", c.Upstreams, err, got)
	}

	dir := t.TempDir()
	two := filepath.Join(dir, "two.yaml")
	writeFile(t, two, `upstreams:
  - {name: vm-a, url: "http://127.0.0.1:8428/api/v1/import/prometheus", capacity: 10MiB/s}
  - {name: vm-b, url: "http://127.0.0.1:8429/api/v1/import/prometheus", capacity: 10MiB/s}
`)
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "upstreams:\n  - {name: vm-a, url: \"ftp://x\", capacity: 10MiB/s}\n")
	mustRun("config", "validate", "-f", two)
	failRun("upstreams[0].url", "config", "validate", "-f", bad)
	failRun("upstreams[0].url", "config", "set", ep, cl, "-f", bad)

	out := mustRun("config", "set", ep, cl, "-f", two)
	m := regexp.MustCompile(`config revision (\d+) written \(was (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("set printed %q", out)
	}
	failRun("changed since it was read", "config", "set", ep, cl, "-f", two, "--expect-revision", m[2])

	hist := mustRun("config", "history", ep, cl)
	if !strings.Contains(hist, m[1]+" ") || !strings.Contains(hist, "upstreams: +vm-a, +vm-b, -up-1") || !strings.Contains(hist, "bootstrap") {
		t.Fatalf("history lacks the two versions:\n%s", hist)
	}
	mustRun("config", "rollback", ep, cl, m[2])
	if got := mustRun("config", "get", ep, cl); !strings.Contains(got, "up-1") || strings.Contains(got, "vm-b") {
		t.Fatalf("after rollback to %s:\n%s", m[2], got)
	}
	failRun("want a positive number", "config", "rollback", ep, cl, "x")
	failRun("cannot reach etcd at http://127.0.0.1:1 within 1s", "config", "get", "--etcd=http://127.0.0.1:1", cl, "--etcd-dial-timeout=1s")
}

// TestConfigEdit drives `config edit` with an editor script that first
// breaks the document, then fixes it: the editor must be opened again
// with the error, and the fixed change shown as a diff and written.
func TestConfigEdit(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=edittest"
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--upstream", "http://127.0.0.1:8428/api/v1/import/prometheus"); code != 0 {
		t.Fatal(stderr)
	}
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	seen := filepath.Join(dir, "seen")
	editor := filepath.Join(dir, "editor.sh")
	writeFile(t, editor, `#!/bin/sh
n=$(cat `+count+` 2>/dev/null || echo 0); n=$((n+1)); echo $n > `+count+`
cat "$1" >> `+seen+`
if [ $n -eq 1 ]; then sed -i 's/capacity: .*/capacity: 0/' "$1"; else sed -i -e 's/capacity: .*/capacity: 20MiB\/s/' -e '/^# procfleet: /d' "$1"; fi
`)
	if err := os.Chmod(editor, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := newCmd(t, "config", "edit", ep, cl)
	cmd.Env = append(os.Environ(), "EDITOR="+editor)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("config edit: %v\n%s", err, out)
	}
	if n, _ := os.ReadFile(count); strings.TrimSpace(string(n)) != "2" {
		t.Fatalf("editor opened %s times, want 2:\n%s", n, out)
	}
	if s, _ := os.ReadFile(seen); !strings.Contains(string(s), "# procfleet: upstreams[0].capacity") {
		t.Fatalf("second opening did not show the error:\n%s", s)
	}
	if !strings.Contains(string(out), "+    capacity: 20MiB/s") || !strings.Contains(string(out), "config revision") {
		t.Fatalf("edit output lacks the diff or the write:\n%s", out)
	}
	got, _, _ := run(t, "config", "get", ep, cl)
	if !strings.Contains(got, "20MiB/s") {
		t.Fatalf("edited config not stored:\n%s", got)
	}
}
