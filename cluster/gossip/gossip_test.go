package gossip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClusterConverges(t *testing.T) {
	t.Parallel()
	start := time.Now()
	nodes := startCluster(t, 5)
	t.Logf("5 members converged in %v", time.Since(start))
	for _, n := range nodes {
		st := n.g.States()[n.name]
		if st.Node != n.name || st.Kind != KindAgent || st.Updated.IsZero() {
			t.Errorf("%s: own state %+v", n.name, st)
		}
	}
	// Joining again, through every member, changes nothing.
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.g.Addr())
	}
	got, err := nodes[3].g.Join(addrs)
	if err != nil || got != 4 {
		t.Fatalf("Join again = %d, %v; want 4 (self skipped), nil", got, err)
	}
	waitMembers(t, time.Second, nodes, names(nodes))
	if v := metricValue(t, nodes[3].set, "procfleet_gossip_joins_total"); v != 2 {
		t.Errorf("joins_total = %v; want 2", v)
	}
	if v := metricValue(t, nodes[0].set, "procfleet_gossip_members"); v != 5 {
		t.Errorf("members = %v; want 5", v)
	}
}

func TestStatePropagates(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 4)
	endpoints := map[string]bool{"vm-a": true, "vm-b": false}
	src := nodes[2]
	if err := src.g.SetLocal(State{Endpoints: endpoints, BytesPerSecond: 12345}); err != nil {
		t.Fatal(err)
	}
	endpoints["vm-a"] = false // SetLocal copied the map
	want := map[string]bool{"vm-a": true, "vm-b": false}
	var last string
	took := waitFor(t, 3*time.Second, func() bool {
		for _, n := range nodes {
			st := n.g.States()[src.name]
			if !maps.Equal(st.Endpoints, want) || st.BytesPerSecond != 12345 || st.Kind != KindAgent {
				last = fmt.Sprintf("%s sees %+v", n.name, st)
				return false
			}
		}
		return true
	}, func() string { return last })
	t.Logf("state seen by all 4 members in %v", took)
	if v := metricValue(t, nodes[0].set, "procfleet_gossip_state_updates_total"); v < 4 {
		t.Errorf("state_updates_total = %v on n0; want at least 4 (its own and one of each other)", v)
	}
	// The returned maps are the caller's.
	nodes[0].g.States()[src.name].Endpoints["vm-b"] = true
	if nodes[0].g.States()[src.name].Endpoints["vm-b"] {
		t.Error("changing a map from States changed the state")
	}
}

func TestLeaveIsSeenQuickly(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 4)
	leaving := nodes[1]
	start := time.Now()
	leaving.stop(t)
	t.Logf("Run returned %v after cancel (leave included)", time.Since(start))
	rest := without(nodes, leaving.name)
	waitMembers(t, 3*time.Second, rest, names(rest))
	t.Logf("a member that left was gone from the others %v after cancel", time.Since(start))
	if len(leaving.g.Members()) != 0 || leaving.g.Addr() != "" {
		t.Errorf("after Run: Members %v, Addr %q; want none", leaving.g.Members(), leaving.g.Addr())
	}
	if _, err := leaving.g.Join([]string{nodes[0].g.Addr()}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Join after Run = %v; want ErrNotRunning", err)
	}
	if err := leaving.g.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Errorf("second Run = %v; want ErrRunTwice", err)
	}
}

// TestKillDetected checks the documented detection time of a member that
// dies without leaving: about 2-3 s, never 8 s.
func TestKillDetected(t *testing.T) {
	t.Parallel()
	for _, k := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", k), func(t *testing.T) {
			nodes := startCluster(t, k)
			victim := nodes[k-1]
			if err := victim.g.SetLocal(State{Endpoints: map[string]bool{"vm-a": false}}); err != nil {
				t.Fatal(err)
			}
			rest := without(nodes, victim.name)
			waitFor(t, 3*time.Second, func() bool {
				return nodes[0].g.States()[victim.name].Endpoints != nil
			}, func() string { return "the victim's state did not arrive" })
			victim.kill(t)
			took := waitMembers(t, 8*time.Second, rest, names(rest))
			t.Logf("%d members: a killed member was gone from every other in %v", k, took)
			if d := Down(nodes[0].g.States(), time.Now()); len(d) != 0 {
				t.Errorf("Down = %v; want none once the dead member's opinion is gone", d)
			}
		})
	}
}

func TestRejoin(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	rest := nodes[:2]

	// Left, then back under the same name on another port.
	nodes[2].stop(t)
	waitMembers(t, 3*time.Second, rest, names(rest))
	back := startNode(t, testConfig("n2"), nodes[0].g.Addr())
	if err := back.g.SetLocal(State{BytesPerSecond: 7}); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(rest), back)
	took := waitMembers(t, convergeWithin, all, names(all))
	t.Logf("rejoined after leaving in %v", took)
	waitFor(t, 3*time.Second, func() bool {
		return nodes[0].g.States()["n2"].BytesPerSecond == 7 && nodes[1].g.States()["n2"].BytesPerSecond == 7
	}, func() string { return fmt.Sprintf("n0 sees n2 as %+v", nodes[0].g.States()["n2"]) })

	// Killed, then back once declared dead.
	back.kill(t)
	waitMembers(t, 8*time.Second, rest, names(rest))
	restarted := time.Now().Truncate(time.Millisecond)
	again := startNode(t, testConfig("n2"), nodes[1].g.Addr())
	all = append(slices.Clone(rest), again)
	took = waitMembers(t, convergeWithin, all, names(all))
	t.Logf("rejoined after a crash in %v", took)
	// Its first state may still be on its way when the membership has
	// converged: wait for it to replace the crashed one's.
	waitFor(t, 3*time.Second, func() bool {
		st, ok := nodes[0].g.States()["n2"]
		return ok && st.BytesPerSecond == 0 && !st.Updated.Before(restarted)
	}, func() string {
		return fmt.Sprintf("n0 sees the restarted n2 as %+v; want its new state, not the crashed one's", nodes[0].g.States()["n2"])
	})

	// Killed and back at once, before the others noticed: its new
	// address conflicts with the old one, still alive to them, and is
	// refused. The caller joins again periodically (seeds come from etcd),
	// which succeeds once the old self is declared dead.
	start := time.Now()
	again.kill(t)
	quick := startNode(t, testConfig("n2"), nodes[0].g.Addr())
	all = append(slices.Clone(rest), quick)
	took = waitFor(t, 10*time.Second, func() bool {
		for _, n := range all {
			if !slices.Equal(n.g.Members(), names(all)) || n.g.States()["n2"].Updated.Before(start.Truncate(time.Millisecond)) ||
				addrOf(n, "n2") != quick.g.Addr() {
				return false
			}
		}
		return true
	}, func() string {
		var b strings.Builder
		for _, n := range all {
			fmt.Fprintf(&b, "%s sees %v, n2 at %s updated %v; ", n.name, n.g.Members(), addrOf(n, "n2"), n.g.States()["n2"].Updated.Sub(start))
		}
		return b.String()
	}, func() {
		quick.g.Join([]string{nodes[0].g.Addr()})
	})
	t.Logf("restarted at once, rejoined in %v with a Join every second", took)
}

// addrOf returns the address at which n's memberlist knows the member
// named name.
func addrOf(n *node, name string) string {
	ml := n.g.ml.Load()
	if ml == nil {
		return ""
	}
	for _, m := range ml.Members() {
		if m.Name == name {
			return m.Address()
		}
	}
	return ""
}

func TestChanges(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig("n0"))
	cfg := testConfig("n1")
	// Every SetLocal is broadcast: the refresh below may come within a
	// millisecond of the state before it (it did on a fast run, and with
	// 1 ms it then went out only with the push/pull, 10 s later).
	cfg.RefreshInterval = time.Nanosecond
	b := startNode(t, cfg, a.g.Addr())
	waitMembers(t, 5*time.Second, []*node{a, b}, []string{"n0", "n1"})
	other, cancel := a.g.Subscribe()
	drain := func() {
		for _, ch := range []<-chan struct{}{a.g.Changes(), other} {
			select {
			case <-ch:
			default:
			}
		}
	}
	expect := func(what string) {
		t.Helper()
		for _, ch := range []<-chan struct{}{a.g.Changes(), other} {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("no change signalled for %s", what)
			}
		}
	}
	drain()
	c := startNode(t, testConfig("c"), a.g.Addr())
	expect("a join")

	waitMembers(t, convergeWithin, []*node{a, b, c}, []string{"c", "n0", "n1"})
	drain()
	if err := b.g.SetLocal(State{Endpoints: map[string]bool{"vm-a": true}}); err != nil {
		t.Fatal(err)
	}
	expect("a remote state")

	// A refresh that changes nothing but Updated is not signalled. a
	// stores a state and signals its change under one lock, so once a
	// holds the refresh (its Updated), a signal would have been counted.
	waitFor(t, 3*time.Second, func() bool { return a.g.States()["n1"].Endpoints["vm-a"] }, func() string { return "no state" })
	settled(t, a)
	drain()
	signals := a.g.signals.Load()
	marker := time.Now().Add(-1500 * time.Millisecond).Truncate(time.Millisecond)
	if err := b.g.SetLocal(State{Endpoints: map[string]bool{"vm-a": true}, Updated: marker}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return a.g.States()["n1"].Updated.Equal(marker) },
		func() string { return fmt.Sprintf("the refresh never reached n0: it holds %+v", a.g.States()["n1"]) })
	if got := a.g.signals.Load(); got != signals {
		t.Errorf("a refresh with the same content was signalled (%d signals, %d before)", got, signals)
	}

	// Many changes coalesce into one pending signal: once the loop has
	// passed on every signal, one is pending on each channel, not two.
	for i := range 20 {
		if err := a.g.SetLocal(State{BytesPerSecond: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	settled(t, a)
	expect("local states")
	select {
	case <-a.g.Changes():
		t.Error("20 changes left more than one signal pending")
	default:
	}

	cancel()
	cancel()
	c.stop(t)
	select {
	case <-a.g.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled for a leave")
	}
	select {
	case <-other:
		t.Error("a cancelled subscription was signalled")
	default:
	}
}

func TestSecretKeyAndCluster(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	cfg := testConfig("k0")
	cfg.SecretKey = key
	a := startNode(t, cfg)
	cfg = testConfig("k1")
	cfg.SecretKey = key
	b := startNode(t, cfg, a.g.Addr())
	waitMembers(t, 3*time.Second, []*node{a, b}, []string{"k0", "k1"})

	plain := startNode(t, testConfig("plain"))
	if _, err := plain.g.Join([]string{a.g.Addr()}); err == nil {
		t.Error("a member without the key joined an encrypted cluster")
	}
	cfg = testConfig("other")
	cfg.Cluster = "another"
	cfg.SecretKey = key
	other := startNode(t, cfg)
	if _, err := other.g.Join([]string{a.g.Addr()}); err == nil {
		t.Error("a member of another cluster joined")
	}
	if v := metricValue(t, other.set, "procfleet_gossip_join_errors_total"); v != 1 {
		t.Errorf("join_errors_total = %v; want 1", v)
	}
	// a has refused both; a state b sends after the attempts arrives,
	// so a went on taking gossip, and the outsiders are still not in.
	if err := b.g.SetLocal(State{BytesPerSecond: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return a.g.States()["k1"].BytesPerSecond == 3 },
		func() string { return fmt.Sprintf("k0 holds %+v of k1", a.g.States()["k1"]) })
	waitMembers(t, time.Second, []*node{a, b}, []string{"k0", "k1"})
}

func TestJoinBeforeRun(t *testing.T) {
	t.Parallel()
	g, err := New(testConfig("x"), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Join([]string{"127.0.0.1:1"}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Join before Run = %v; want ErrNotRunning", err)
	}
	if g.Addr() != "" || len(g.Members()) != 0 || len(g.States()) != 0 {
		t.Errorf("before Run: Addr %q, Members %v, States %v; want none", g.Addr(), g.Members(), g.States())
	}
	// SetLocal before Run is kept and gossiped once running.
	if err := g.SetLocal(State{BytesPerSecond: 5}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-g.Ready()
	if st := g.States()["x"]; st.BytesPerSecond != 5 {
		t.Errorf("own state %+v; want the one set before Run", st)
	}
	if n, err := g.Join([]string{g.Addr()}); n != 0 || err != nil {
		t.Errorf("Join(self) = %d, %v; want 0, nil", n, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunPortTaken(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig("a"))
	cfg := testConfig("b")
	_, port, _ := strings.Cut(a.g.Addr(), ":")
	fmt.Sscan(port, &cfg.BindPort)
	g, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Run(context.Background())
	be, ok := errors.AsType[*BindError](err)
	if !ok || be.Addr != a.g.Addr() || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Run on a taken port = %v; want a BindError for %s with EADDRINUSE", err, a.g.Addr())
	}
	select {
	case <-g.Ready():
		t.Error("Ready closed after Run failed")
	default:
	}

	// memberlist needs UDP on the same port too. The port is one whose
	// TCP side was free a moment ago: on a busy host a random UDP port's
	// number may be a TCP connection's local port, and the TCP bind would
	// then fail first.
	pc := udpOnlyPort(t)
	defer pc.Close()
	cfg = testConfig("c")
	cfg.BindPort = pc.LocalAddr().(*net.UDPAddr).Port
	g, err = New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if be, ok := errors.AsType[*BindError](g.Run(context.Background())); !ok || be.Proto != "udp" {
		t.Errorf("Run on a port taken for UDP = %v; want a BindError for udp", be)
	}
}

// udpOnlyPort returns a UDP socket on loopback whose port number is free
// for TCP.
func udpOnlyPort(t *testing.T) net.PacketConn {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			l.Close()
			return pc
		}
		pc.Close()
	}
	t.Fatal("no UDP port on loopback whose TCP port was free in 50 tries")
	return nil
}
