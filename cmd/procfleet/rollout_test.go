package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// rolloutDoc is a cluster document with one upstream that answers nothing
// (the rollout does not need data to flow) and extra YAML.
func rolloutDoc(extra string) string {
	return "upstreams:\n  - {name: vm-a, url: \"http://127.0.0.1:9/api/v1/import/prometheus\", capacity: 1MiB/s}\n" + extra
}

// TestConfigSetWait follows three rollouts to three agent processes, as
// an operator would: one every agent applies (exit 0, progress printed,
// within seconds though the members write their status every 10s), one
// that a3 refuses because two overrides that match it together are
// invalid (exit 1 naming a3 and its error, while a1 and a2 apply it), and
// one that a2, frozen with SIGSTOP, cannot apply before --wait=3s ends
// (exit 1 naming a2 as pending).
func TestConfigSetWait(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=wait"
	dir := t.TempDir()
	doc := func(name, extra string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, rolloutDoc(extra))
		return p
	}
	if _, stderr, code := run(t, "cluster", "bootstrap", ep, cl, "--config", doc("first.yaml", "")); code != 0 {
		t.Fatal(stderr)
	}
	fixture, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "fixtures", "proc"))
	procs := map[string]*exec.Cmd{}
	for n, role := range map[string]string{"a1": "web", "a2": "web", "a3": "db"} {
		cmd := exec.Command(binary, "agent", ep, cl, "--node", n, "--labels", "role="+role, "--procfs-root", fixture,
			"--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "error")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[n] = cmd
		t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	waitAgents(t, ep, cl, 3)

	written := regexp.MustCompile(`config revision (\d+) written`)
	// Every agent applies it.
	begin := time.Now()
	out, stderr, code := run(t, "config", "set", ep, cl, "-f", doc("second.yaml", "agents: {full_every: 20}\n"), "--wait")
	took := time.Since(begin)
	m := written.FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "config revision "+m[1]+": applied by 3/3 members\n") {
		t.Fatalf("config set --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	t.Logf("config set --wait returned after %s:\n%s", took, out)
	if took > 8*time.Second { // on the status timer alone, up to 10s
		t.Errorf("config set --wait took %s for three members; want a second or two", took)
	}

	// a3 (role=db, node a3) refuses it: the two overrides that match it
	// are valid alone, not together.
	refused := doc("third.yaml", `overrides:
  - match: {labels: {role: db}}
    agents: {ship: {retry: {min_backoff: 20s}}}
  - match: {nodes: [a3]}
    agents: {ship: {retry: {max_backoff: 10s}}}
`)
	out, stderr, code = run(t, "config", "set", ep, cl, "-f", refused, "--wait=30s")
	m = written.FindStringSubmatch(out)
	if code != 1 || m == nil || !strings.Contains(out, "applied by 2/3 members; refused: a3\n") ||
		!strings.Contains(stderr, "config revision "+m[1]+" refused by 1 of 3 members") ||
		!strings.Contains(stderr, "a3: config revision "+m[1]+" not applied: overrides[1].agents.ship.retry.max_backoff") {
		t.Fatalf("config set --wait of a revision a3 refuses: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}

	// a2 is frozen: it cannot apply the next revision in time.
	if err := procs["a2"].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = run(t, "config", "rollback", ep, cl, replaced(t, out), "--wait=3s")
	if err := procs["a2"].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	m = written.FindStringSubmatch(out)
	if code != 1 || m == nil || !strings.Contains(out, "applied by 2/3 members; pending: a2\n") ||
		!strings.Contains(stderr, "config revision "+m[1]+" not applied by every member within 3s") || !strings.Contains(stderr, "a2 is at revision") {
		t.Fatalf("config rollback --wait=3s with a2 frozen: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}

	// --wait takes no separate argument, and a bad duration is a usage error.
	if _, stderr, code := run(t, "config", "set", ep, cl, "-f", refused, "--wait=soon"); code != 2 || !strings.Contains(stderr, "--wait") {
		t.Fatalf("--wait=soon: exit %d, %s", code, stderr)
	}
}

// replaced returns the revision that out says was replaced ("(was N)").
func replaced(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`\(was (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no (was N) in %q", out)
	}
	return m[1]
}

// waitAgents waits until status lists n agents, each at the current
// config revision.
func waitAgents(t *testing.T, ep, cl string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, code := run(t, "status", ep, cl, "-o", "json")
		if code == 0 && strings.Count(out, `"node"`) == n {
			var rev string
			if m := regexp.MustCompile(`(?m)^  "config_revision": (\d+)`).FindStringSubmatch(out); m != nil {
				rev = m[1]
			}
			if rev != "" && strings.Count(out, `"config_revision": `+rev) == n+1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d agents at the current revision not seen within 60s; status:\n%s", n, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestConfigHistoryAndDiff checks what history says of each revision
// (who wrote it, how, what changed) and that diff prints a unified diff
// between two revisions and against the current one.
func TestConfigHistoryAndDiff(t *testing.T) {
	etcd := etcdtest.StartEtcd(t)
	ep := "--etcd=" + strings.Join(etcd.Endpoints, ",")
	cl := "--cluster=hist"
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("procfleet %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	rev := func(out string) string {
		t.Helper()
		m := regexp.MustCompile(`config revision (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no revision in %q", out)
		}
		return m[1]
	}
	r1 := rev(mustRun("cluster", "bootstrap", ep, cl, "--config", file("1.yaml", rolloutDoc(""))))
	r2 := rev(mustRun("config", "set", ep, cl, "-f", file("2.yaml", rolloutDoc(
		"  - {name: vm-c, url: \"http://127.0.0.1:10/api/v1/import/prometheus\", capacity: 1MiB/s}\n"))))
	r3 := rev(mustRun("config", "set", ep, cl, "-f", file("3.yaml", rolloutDoc(
		"  - {name: vm-c, url: \"http://127.0.0.1:10/api/v1/import/prometheus\", capacity: 1MiB/s}\n"+
			"agents: {generators: {process: {threads: true}}}\n"))))
	r4 := rev(mustRun("config", "rollback", ep, cl, r1))

	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	by := u.Username + "@" + host
	hist := mustRun("config", "history", ep, cl)
	t.Logf("config history:\n%s", hist)
	for _, want := range []string{
		`(?m)^REVISION +WRITTEN +BY +HOW +CHANGE$`,
		`(?m)^` + r4 + ` +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +` + regexp.QuoteMeta(by) + ` +rollback to revision ` + r1 + ` +agents.generators.process.threads: true→false; ring.fallbacks: 1→0; upstreams: -vm-c$`,
		`(?m)^` + r3 + ` +\S+ +` + regexp.QuoteMeta(by) + ` +set +agents.generators.process.threads: false→true$`,
		`(?m)^` + r2 + ` +\S+ +` + regexp.QuoteMeta(by) + ` +set +ring.fallbacks: 0→1; upstreams: \+vm-c$`,
		`(?m)^` + r1 + ` +\S+ +` + regexp.QuoteMeta(by) + ` +bootstrap +\(the oldest kept\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(hist) {
			t.Errorf("history does not match %s", want)
		}
	}

	d := mustRun("config", "diff", ep, cl, r2, r3)
	wantDiff := fmt.Sprintf("--- config revision %s\t", r2)
	if !strings.HasPrefix(d, wantDiff) || !strings.Contains(d, "\n+++ config revision "+r3+"\t") ||
		!strings.Contains(d, "\n@@ -1,3 +1,4 @@\n") || !strings.HasSuffix(d, "\n+agents: {generators: {process: {threads: true}}}\n") {
		t.Errorf("config diff %s %s:\n%s", r2, r3, d)
	}
	if d := mustRun("config", "diff", ep, cl, r1); d != "" { // r4 is r1 again
		t.Errorf("config diff %s against the current revision, its copy: %q", r1, d)
	}
	if d := mustRun("config", "diff", ep, cl, r3); !strings.Contains(d, "-  - {name: vm-c") || !strings.Contains(d, "+++ config revision "+r4) {
		t.Errorf("config diff %s against the current revision:\n%s", r3, d)
	}
	if _, stderr, code := run(t, "config", "diff", ep, cl, "999999"); code != 2 || !strings.Contains(stderr, "no such config revision") {
		t.Errorf("diff of an unknown revision: exit %d, %s", code, stderr)
	}
	if out := mustRun("config", "validate", "-f", filepath.Join(dir, "3.yaml"), ep, cl); !strings.Contains(out, "against cluster \"hist\" at config revision "+r4+": agents.generators.process.threads: false→true; ring.fallbacks: 0→1; upstreams: +vm-c") {
		t.Errorf("validate against the cluster:\n%s", out)
	}
}

// TestRolloutProgress checks how a rollout counts members from their
// status keys: applied at the revision or a later one, refused when it
// rejected the revision (or a later one) while on an older one, pending
// otherwise (no status yet included), and how the line says so.
func TestRolloutProgress(t *testing.T) {
	space, _ := keys.New("c")
	f := func(statuses map[string]string, want string) {
		t.Helper()
		r := &rollout{space: space, rev: 10, live: map[string]bool{}, status: map[string]cluster.Status{}}
		for node, st := range statuses {
			key, _ := space.Member(keys.Agent, node)
			r.take(key, []byte{})
			if st != "" {
				skey, _ := space.Status(node)
				r.take(skey, []byte(st))
			}
		}
		if got := r.progress().String(); got != want {
			t.Errorf("progress of %v = %q, want %q", statuses, got, want)
		}
	}
	f(nil, "no live member to apply it (none is registered)")
	f(map[string]string{"a1": `{"config_revision": 10}`, "a2": `{"config_revision": 11}`, "a3": `{"config_revision": 9}`},
		"applied by 2/3 members; pending: a3")
	f(map[string]string{"a1": `{"config_revision": 9, "rejected_revision": 10}`, "a2": `{"config_revision": 9, "rejected_revision": 11}`,
		"a3": `{"config_revision": 9, "rejected_revision": 8}`, "a4": ""},
		"applied by 0/4 members; pending: a3, a4; refused: a1, a2")
	many := map[string]string{}
	for i := range 12 {
		many[fmt.Sprintf("n%02d", i)] = ""
	}
	f(many, "applied by 0/12 members; pending: n00, n01, n02, n03, n04, n05, n06, n07, n08, n09 and 2 more")
}
