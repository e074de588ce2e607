package gossip

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// The tests here run members as the compose demo does (deploy/compose):
// each in a network namespace of its own with one address on a bridge,
// bound to 0.0.0.0:7946 with nothing advertised, so that each advertises
// its private address and members reach each other at distinct
// addresses, not on loopback. Each member is a child process of the test
// binary (TestNetnsMember) started with `ip netns exec`, spoken to over
// its stdin and stdout.

// netnsEnv is set in a member's environment: its name, transport and
// namespace.
const netnsEnv = "PROCFLEET_GOSSIP_NETNS_MEMBER"

// netnsNet makes a bridge in a namespace of its own and k member
// namespaces on it, the member i at 172.31.213.(10+i)/24, and removes them
// when the test ends. It skips the test when not root or without ip(8).
func netnsNet(t *testing.T, k int) (nss, ips []string) {
	t.Helper()
	testenv.NeedNetns(t)
	ipCmd := func(args ...string) {
		t.Helper()
		testenv.IP(t, args...)
	}
	prefix := fmt.Sprintf("pfg%d", os.Getpid())
	br := prefix + "br"
	ipCmd("netns", "add", br)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", br).Run() })
	ipCmd("-n", br, "link", "add", "br0", "type", "bridge")
	ipCmd("-n", br, "link", "set", "br0", "up")
	for i := range k {
		ns := fmt.Sprintf("%sm%d", prefix, i)
		ipCmd("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		veth := fmt.Sprintf("v%d", i)
		ipCmd("-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipCmd("-n", br, "link", "set", veth, "master", "br0", "up")
		addr := fmt.Sprintf("172.31.213.%d", 10+i)
		ipCmd("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		ipCmd("-n", ns, "link", "set", "eth0", "up")
		ipCmd("-n", ns, "link", "set", "lo", "up")
		nss, ips = append(nss, ns), append(ips, addr)
	}
	return nss, ips
}

// nsMember is a member running in a child process.
type nsMember struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string
	mu      sync.Mutex // one request at a time
}

// nsReport is a member's answer to "report".
type nsReport struct {
	Addr     string
	Members  []string
	Down     []string
	Opinions map[string]map[string]bool // member -> its Endpoints, as held here
}

// startNSMember starts the member name in namespace ns with transport tr
// ("own" or "net") and stops it when the test ends.
func startNSMember(t *testing.T, ns, name, tr string) *nsMember {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestNetnsMember$", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"="+name+","+tr)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &nsMember{name: name, cmd: cmd, stdin: stdin, replies: make(chan string, 1)}
	go func() {
		defer close(m.replies)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "netns: "); ok {
				m.replies <- r
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close() // EOF: the member leaves and exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s: still running 15s after its stdin closed", name)
		}
	})
	if r := m.do(t, "ready"); r != "ok" {
		t.Fatalf("%s: %s", name, r)
	}
	return m
}

// do sends one request and returns its reply.
func (m *nsMember) do(t *testing.T, req string) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := fmt.Fprintln(m.stdin, req); err != nil {
		t.Fatalf("%s: %s: %v", m.name, req, err)
	}
	select {
	case r, ok := <-m.replies:
		if !ok {
			t.Fatalf("%s: %s: the member exited", m.name, req)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: %s: no reply in 10s", m.name, req)
	}
	return ""
}

func (m *nsMember) report(t *testing.T) nsReport {
	t.Helper()
	var r nsReport
	if err := json.Unmarshal([]byte(m.do(t, "report")), &r); err != nil {
		t.Fatalf("%s: report: %v", m.name, err)
	}
	return r
}

// TestNetnsMember is the member process of the tests here; it runs only
// as such (netnsEnv set). It runs a gossip bound to 0.0.0.0:7946, as the
// compose demo's agents do, and answers requests on stdin, one line each:
// "ready", "join ADDR,...", "set UPSTREAM=true|false,...", "report". At
// the end of stdin it leaves and returns.
func TestNetnsMember(t *testing.T) {
	v := os.Getenv(netnsEnv)
	if v == "" {
		t.Skip("a member process of TestNetns* only")
	}
	name, tr, _ := strings.Cut(v, ",")
	useNetTransport = tr == "net"
	reply := func(format string, args ...any) { fmt.Printf("netns: "+format+"\n", args...) }
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Cluster = name, "demo"
	var logs slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	if os.Getenv("GOSSIP_DEBUG") != "" {
		logs = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	g, err := New(cfg, Deps{Logger: slog.New(logs).With("member", name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "ready":
			select {
			case <-g.Ready():
				reply("ok")
			case err := <-done:
				reply("Run: %v", err)
				done <- err
			case <-time.After(5 * time.Second):
				reply("not ready in 5s")
			}
		case "join":
			if n, err := g.Join(strings.Split(arg, ",")); err != nil {
				reply("%v", err)
			} else {
				reply("ok %d", n)
			}
		case "set":
			ep := map[string]bool{}
			for kv := range strings.SplitSeq(arg, ",") {
				k, val, _ := strings.Cut(kv, "=")
				ep[k], _ = strconv.ParseBool(val)
			}
			if err := g.SetLocal(State{Endpoints: ep}); err != nil {
				reply("%v", err)
			} else {
				reply("ok")
			}
		case "report":
			states := g.States()
			r := nsReport{Addr: g.Addr(), Members: g.Members(), Down: Down(states, time.Now()), Opinions: map[string]map[string]bool{}}
			for n, s := range states {
				r.Opinions[n] = s.Endpoints
			}
			b, _ := json.Marshal(r)
			reply("%s", b)
		default:
			reply("unknown request %q", cmd)
		}
	}
}

// TestNetnsOpinionsPropagate: members in namespaces of their own, bound to
// 0.0.0.0 as in the compose demo, advertise their own address, see each
// other and each other's opinions of the upstreams, and an upstream that
// the agents say is unhealthy is down for every member within a few
// seconds. It runs with the package's transport and with memberlist's
// NetTransport, which must behave alike off loopback: `make e2e`'s compose
// failover once failed with the package's transport, and this is where the
// transport would have shown it (it did not; the failure was a stale
// opinion, see docs/design/cluster.md, "The gossip transport is back: the
// compose failover waited on a stale opinion (2026-12-05)").
func TestNetnsOpinionsPropagate(t *testing.T) {
	nss, ips := netnsNet(t, 4)
	for _, tr := range []string{"own", "net"} {
		t.Run(tr, func(t *testing.T) {
			names := []string{"agent1", "agent2", "agent3", "relay1"}
			var ms []*nsMember
			for i, name := range names {
				ms = append(ms, startNSMember(t, nss[i], name, tr))
			}
			for i, m := range ms {
				if r := m.report(t); r.Addr != ips[i]+":7946" {
					t.Fatalf("%s advertises %s; want its namespace's address %s:7946", m.name, r.Addr, ips[i])
				}
			}
			// Each joins through the others' addresses, as an agent does
			// with the member keys it reads from etcd.
			for i, m := range ms[1:] {
				var seeds []string
				for _, ip := range ips[:i+1] {
					seeds = append(seeds, ip+":7946")
				}
				if r := m.do(t, "join "+strings.Join(seeds, ",")); !strings.HasPrefix(r, "ok") {
					t.Fatalf("%s: join: %s", m.name, r)
				}
			}
			agents := ms[:3]
			for _, m := range agents {
				if r := m.do(t, "set vm1=true,vm2=true"); r != "ok" {
					t.Fatalf("%s: %s", m.name, r)
				}
			}
			// Every member sees the four, and the three agents' opinions.
			want := slices.Sorted(slices.Values(names))
			wantOp := map[string]bool{"vm1": true, "vm2": true}
			waitNS(t, 10*time.Second, ms, func(m *nsMember, r nsReport) error {
				if !slices.Equal(r.Members, want) {
					return fmt.Errorf("%s sees members %v, want %v", m.name, r.Members, want)
				}
				for _, a := range agents {
					if !maps.Equal(r.Opinions[a.name], wantOp) {
						return fmt.Errorf("%s holds %s's opinion %v, want %v", m.name, a.name, r.Opinions[a.name], wantOp)
					}
				}
				return nil
			})
			// vm1 stops: every agent finds it unhealthy, one after the
			// other; the cluster takes it as down within seconds.
			for _, m := range agents {
				if r := m.do(t, "set vm1=false,vm2=true"); r != "ok" {
					t.Fatalf("%s: %s", m.name, r)
				}
			}
			d := waitNS(t, 10*time.Second, ms, func(m *nsMember, r nsReport) error {
				if !slices.Equal(r.Down, []string{"vm1"}) {
					return fmt.Errorf("%s has down %v, want [vm1]; members %v, opinions %v", m.name, r.Down, r.Members, r.Opinions)
				}
				return nil
			})
			t.Logf("%s transport: vm1 down for every member %v after the agents said so", tr, d.Round(time.Millisecond))
		})
	}
}

// waitNS asks every member for its report until check passes for all of
// them, and returns how long that took; it fails the test after timeout
// with the last complaint.
func waitNS(t *testing.T, timeout time.Duration, ms []*nsMember, check func(*nsMember, nsReport) error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var err error
		for _, m := range ms {
			if err = check(m, m.report(t)); err != nil {
				break
			}
		}
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
