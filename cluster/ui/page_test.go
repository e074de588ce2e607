package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster"
	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/internal/etcdtest"
	"github.com/procfleet/procfleet/internal/testenv"
)

// buildProcfleet builds the procfleet binary into a temporary directory.
func buildProcfleet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "procfleet")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "github.com/procfleet/procfleet/cmd/procfleet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build procfleet: %v\n%s", err, out)
	}
	t.Logf("built procfleet in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// procfleet runs the binary to its end and returns its stdout.
func procfleet(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("procfleet %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// start starts the binary in the background, killed when the test ends.
func start(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("procfleet %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return cmd
}

// primaries is `procfleet status -o json` as the nodes under each
// upstream, which the page must group alike, and the config revision.
func primaries(t *testing.T, bin string, args ...string) (map[string][]string, int64) {
	t.Helper()
	var s struct {
		ConfigRevision int64 `json:"config_revision"`
		Agents         []struct {
			Node      string   `json:"node"`
			Upstreams []string `json:"upstreams"`
		} `json:"agents"`
		Upstreams []struct {
			Name string `json:"name"`
		} `json:"upstreams"`
	}
	out := procfleet(t, bin, append([]string{"status", "-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	g := map[string][]string{}
	for _, u := range s.Upstreams {
		g[u.Name] = []string{}
	}
	for _, a := range s.Agents {
		if len(a.Upstreams) > 0 {
			g[a.Upstreams[0]] = append(g[a.Upstreams[0]], a.Node)
		}
	}
	for _, nodes := range g {
		slices.Sort(nodes)
	}
	return g, s.ConfigRevision
}

func sameGroups(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if joinSorted(v) != joinSorted(b[k]) {
			return false
		}
	}
	return true
}

// settled is true on the page when the budgets of each upstream that
// agents write to add up to its capacity: the members write their status
// keys at different times, and a page drawn in between shows an upstream
// over- or under-booked for a moment.
const settled = `[...document.querySelectorAll("#upstreams .upstream")].every((u) =>
  u.dataset.agents === "0" || u.dataset.budget === u.dataset.capacity)`

// TestPageFollowsLiveCluster runs the cluster as an operator would (a real
// etcd, two real VictoriaMetrics, three agent processes, procfleet ui) and
// looks at the page in headless chromium: it shows the three agents under
// the upstreams the ring put them on, as status does; an agent killed
// with SIGKILL is gone from the page within its lease TTL plus 2 s; after
// config set the rollout shows the new revision and then every member on
// it. Screenshots are saved in the test's artifact directory.
func TestPageFollowsLiveCluster(t *testing.T) {
	b := newBrowser(t) // first: without chromium there is no point in the rest
	bin := buildProcfleet(t)
	etcd := etcdtest.StartEtcd(t)
	vmA, vmB := testenv.StartVM(t), testenv.StartVM(t)
	ep, cl := "--etcd="+strings.Join(etcd.Endpoints, ","), "--cluster=live"
	const leaseTTL = 2 * time.Second
	doc := func(capB string) string {
		return fmt.Sprintf("upstreams:\n  - {name: vm-a, url: %q, capacity: 1MiB/s}\n  - {name: vm-b, url: %q, capacity: %s}\n"+
			"agents:\n  compress: {flush_age: 250ms}\nstatus: {interval: 1s}\n", vmA.ImportURL, vmB.ImportURL, capB)
	}
	cfgFile := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(cfgFile, []byte(doc("1MiB/s")), 0o644); err != nil {
		t.Fatal(err)
	}
	procfleet(t, bin, "cluster", "bootstrap", ep, cl, "--config", cfgFile)
	procfs := filepath.Join(testenv.RepoRoot(t), "testdata", "fixtures", "proc")
	agents := map[string]*exec.Cmd{}
	for _, n := range []string{"n1", "n2", "n3"} {
		agents[n] = start(t, bin, "agent", ep, cl, "--node", n, "--hostname", n, "--lease-ttl", leaseTTL.String(),
			"--procfs-root", procfs, "--listen", "127.0.0.1:0", "--gossip-listen", "127.0.0.1:0", "--log-level", "warn")
	}
	addr := testenv.FreeAddr(t)
	start(t, bin, "ui", ep, cl, "--listen", addr)
	url := "http://" + addr + "/"
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "procfleet ui answers", func() error {
		_, err := tryGet(url + "api/view")
		return err
	})
	b.open(url)

	took := b.wait("3 agents over 2 upstreams, all on the current revision", 60*time.Second, `
	  document.getElementById("summary").dataset.agents === "3" &&
	  document.querySelectorAll("#upstreams .upstream").length === 2 &&
	  document.querySelectorAll("#upstreams .chip[data-kind=agent]").length === 3 &&
	  document.getElementById("rollout").dataset.onCurrent === "3" && `+settled)
	t.Logf("3 agents on the page %v after it loaded", took.Round(time.Millisecond))
	// The page groups the agents as status does (budgets settle first).
	var want map[string][]string
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the page's groups to match status", func() error {
		want, _ = primaries(t, bin, ep, cl)
		if got := b.groups(); !sameGroups(got, want) {
			return fmt.Errorf("page %v, status %v", got, want)
		}
		return nil
	})
	t.Logf("agents by primary upstream: %v", want)
	b.checkLayout("3 agents")
	b.screenshot("live-3-agents")

	if err := agents["n2"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	b.wait("2 agents after n2 was killed", 30*time.Second, `
	  document.getElementById("summary").dataset.agents === "2" &&
	  document.querySelectorAll("#upstreams .chip[data-kind=agent]").length === 2 &&
	  !document.querySelector(".chip[data-node=n2]")`)
	gone := time.Since(killed)
	t.Logf("n2 gone from the page %v after SIGKILL (lease TTL %v)", gone.Round(time.Millisecond), leaseTTL)
	if gone > leaseTTL+2*time.Second {
		t.Errorf("n2 left the page %v after SIGKILL; want within the lease TTL %v plus 2s", gone.Round(time.Millisecond), leaseTTL)
	}
	b.screenshot("live-n2-killed")

	if err := os.WriteFile(cfgFile, []byte(doc("2MiB/s")), 0o644); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	procfleet(t, bin, "config", "set", ep, cl, "-f", cfgFile)
	_, rev := primaries(t, bin, ep, cl)
	shown := b.wait("the new revision", 10*time.Second, fmt.Sprintf(`document.getElementById("rollout").dataset.current === "%d"`, rev))
	t.Logf("config revision %d on the page %v after config set returned", rev, shown.Round(time.Millisecond))
	if shown > 2*time.Second {
		t.Errorf("the new revision showed %v after config set; want within 2s", shown.Round(time.Millisecond))
	}
	b.screenshot("live-rollout-started")
	b.wait("both members on the new revision and vm-b's new capacity", 30*time.Second, fmt.Sprintf(`
	  document.getElementById("rollout").dataset.current === "%d" &&
	  document.getElementById("rollout").dataset.onCurrent === "2" &&
	  document.querySelector(".upstream[data-name=vm-b] .barlabel").textContent.includes("of 2 MiB/s") && %s`, rev, settled))
	t.Logf("rollout of revision %d complete on the page %v after config set", rev, time.Since(set).Round(time.Millisecond))
	b.checkLayout("2 agents after the rollout")
	b.screenshot("live-rollout-done")
}

// TestPageThreeHundredAgents draws a cluster of 300 agents and 2 relays
// over three upstreams (their member and status keys written straight
// into etcd): the page counts them all, groups them by primary, shows the
// rollout half done, fits a 1280x800 window without anything sticking out
// (bounding boxes), keeps the overview above the fold, and a member list
// opened stays open and inside its card across updates.
func TestPageThreeHundredAgents(t *testing.T) {
	b := newBrowser(t)
	etcd := etcdtest.StartEtcd(t)
	cli := etcd.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	space, _ := keys.New("big")
	put := func(key string, v any) int64 {
		t.Helper()
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := v.(string); ok {
			data = []byte(s)
		}
		resp, err := cli.Put(ctx, key, string(data))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	const doc = `upstreams:
  - {name: vm-east, url: "http://10.1.0.1:8428/api/v1/import/prometheus", capacity: 40MiB/s}
  - {name: vm-west, url: "http://victoria-metrics-west.storage.internal.example.net:8428/api/v1/import/prometheus?extra_label=dc%3Dwest&extra_label=tier%3Dhot", capacity: 40MiB/s}
  - {name: relay-north, url: "http://relay-1:8480/api/v1/import/prometheus", capacity: 10MiB/s, relay: true}
`
	old := put(space.Config(), doc)
	cur := put(space.Config(), doc+"status: {interval: 5s}\n")
	names := []string{"vm-east", "vm-west", "relay-north"}
	capacity := []int64{40 << 20, 40 << 20, 10 << 20} // about 100 members each
	urls := map[string]string{"vm-east": "http://10.1.0.1:8428/api/v1/import/prometheus", "vm-west": "http://victoria-metrics-west.storage.internal.example.net:8428/api/v1/import/prometheus?extra_label=dc%3Dwest&extra_label=tier%3Dhot",
		"relay-north": "http://relay-1:8480/api/v1/import/prometheus"}
	want := map[string][]string{}
	onCurrent := 0
	member := func(kind keys.Kind, node string, primary int, rev int64, lastErr string) {
		t.Helper()
		k, _ := space.Member(kind, node)
		http := "10.2.0.1:9477"
		if kind == keys.Relay {
			http = "10.2.0.9:8480" // relay-1 serves relay-north
		}
		put(k, map[string]any{"address": "10.2.0.1:7946", "http": http, "version": "v0.9.0", "kind": kind, "start_time": time.Now()})
		if primary < 0 {
			return // registered, no status yet
		}
		order := []string{names[primary], names[(primary+1)%2]}
		healthy := []cluster.EndpointHealth{{URL: urls[order[0]], Healthy: true, Recent: true}}
		k, _ = space.Status(node)
		put(k, cluster.Status{Node: node, Kind: string(kind), ConfigRevision: rev, Upstreams: order, BudgetBytesPerSecond: capacity[primary] / 100,
			QueueBatches: primary, Endpoints: healthy, LastError: lastErr, Updated: time.Now().UTC()})
		if kind == keys.Agent {
			want[order[0]] = append(want[order[0]], node)
		}
		if rev == cur {
			onCurrent++
		}
	}
	for i := 1; i <= 300; i++ {
		node := fmt.Sprintf("host-%03d.example.net", i)
		switch {
		case i%100 == 0:
			member(keys.Agent, node, -1, 0, "")
		case i%60 == 0:
			member(keys.Agent, node, i%3, old, fmt.Sprintf("cannot apply config revision %d: ship.credential %q is not defined in this host's agent.yaml", cur, "east"))
		case i%7 == 0:
			member(keys.Agent, node, i%3, old, "")
		default:
			member(keys.Agent, node, i%3, cur, "")
		}
	}
	member(keys.Relay, "relay-1", 0, cur, "")
	member(keys.Relay, "relay-2", 1, cur, "")
	url := startServer(t, etcd.Endpoints, "big")
	b.open(url + "/")
	b.wait("300 agents and 2 relays", 30*time.Second, fmt.Sprintf(`
	  document.getElementById("summary").dataset.agents === "300" &&
	  document.getElementById("summary").dataset.relays === "2" &&
	  document.getElementById("rollout").dataset.onCurrent === "%d"`, onCurrent))
	got := b.groups()
	for _, name := range names {
		var agents []string
		for _, n := range got[name] {
			if strings.HasPrefix(n, "host-") {
				agents = append(agents, n)
			}
		}
		slices.Sort(want[name])
		if joinSorted(agents) != joinSorted(want[name]) {
			t.Errorf("%s: the page shows %d agents, want %d", name, len(agents), len(want[name]))
		}
	}
	b.checkLayout("300 agents")
	below, err := eval[string](b, `[...document.querySelectorAll("#rollout, #problems, #upstreams .upstream")]
	  .filter((e) => e.getBoundingClientRect().bottom > window.innerHeight).map((e) => e.id || e.dataset.name).join(", ")`)
	if err != nil {
		t.Fatal(err)
	}
	if below != "" {
		t.Errorf("below the fold of a 1280x800 window: %s", below)
	}
	b.screenshot("300-agents")

	// A list opened stays open, scrolls inside its card, and survives an
	// update of the view.
	if _, err := eval[bool](b, `(() => { const d = document.querySelector(".upstream[data-name=vm-east] details"); d.open = true; return true })()`); err != nil {
		t.Fatal(err)
	}
	b.wait("vm-east's list open", 5*time.Second, `document.querySelector(".upstream[data-name=vm-east] .list").getBoundingClientRect().height > 100`)
	before, _ := eval[string](b, `document.body.dataset.etcdRevision`)
	k, _ := space.Status("host-001.example.net")
	put(k, cluster.Status{ConfigRevision: cur, Upstreams: []string{"vm-west", "vm-east"}, BudgetBytesPerSecond: 1, Updated: time.Now().UTC()})
	b.wait("the update", 5*time.Second, fmt.Sprintf(`document.body.dataset.etcdRevision !== %q`, before))
	open, err := eval[bool](b, `(() => { const l = document.querySelector(".upstream[data-name=vm-east] .list");
	  return l.closest("details").open && l.scrollHeight > l.clientHeight && l.getBoundingClientRect().height <= 240 })()`)
	if err != nil || !open {
		t.Errorf("vm-east's list after an update: open, scrolling and at most 240px high = %v (%v)", open, err)
	}
	// Its card takes the whole row, wide enough for every column's head.
	cut, err := eval[string](b, `(() => { const u = document.querySelector(".upstream[data-name=vm-east]");
	  if (u.getBoundingClientRect().width < 1000) return "card " + u.getBoundingClientRect().width + "px wide";
	  return [...u.querySelectorAll("th")].filter((th) => th.scrollWidth > th.clientWidth).map((th) => th.textContent).join(", ") })()`)
	if err != nil || cut != "" {
		t.Errorf("vm-east's open list is cramped: %s (%v)", cut, err)
	}
	b.checkLayout("300 agents with a list open")
	b.screenshot("300-agents-list-open")
}

// tryGet returns the body of a GET, or why it failed or was not 200.
func tryGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}
