package gossip

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// skewed returns a clock off by d from the real one.
func skewed(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

// startSkewed runs a member whose clock is off by skew.
func startSkewed(t *testing.T, name string, skew time.Duration, seeds ...string) *node {
	t.Helper()
	return startNodeDeps(t, testConfig(name), Deps{Now: skewed(skew)}, seeds...)
}

// TestOpinionAgesUseTheReceiversClock runs members whose clocks are an
// hour ahead and an hour behind: their fresh opinions count where they
// arrive, and an opinion formed 40 s ago on its sender's clock does not,
// however the clocks differ. Before ages were measured on each clock, the
// receiver compared the sender's timestamps with its own clock and dropped
// both fresh opinions as an hour off.
func TestOpinionAgesUseTheReceiversClock(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig("a"))
	ahead := startSkewed(t, "ahead", time.Hour, a.g.Addr())
	behind := startSkewed(t, "behind", -time.Hour, a.g.Addr())
	old := startSkewed(t, "old", 5*time.Minute, a.g.Addr())
	waitMembers(t, convergeWithin, []*node{a, ahead, behind, old}, []string{"a", "ahead", "behind", "old"})

	set := func(n *node, s State) {
		t.Helper()
		if err := n.g.SetLocal(s); err != nil {
			t.Fatal(err)
		}
	}
	set(ahead, State{Endpoints: map[string]bool{"vm-a": false}})
	set(behind, State{Endpoints: map[string]bool{"vm-b": false}})
	// Formed 40 s ago on its own clock, which is 5 minutes ahead.
	set(old, State{Endpoints: map[string]bool{"vm-c": false}, Updated: time.Now().Add(5*time.Minute - 40*time.Second)})
	waitFor(t, 5*time.Second, func() bool {
		st := a.g.States()
		return st["ahead"].Endpoints != nil && st["behind"].Endpoints != nil && st["old"].Endpoints != nil
	}, func() string { return fmt.Sprintf("a holds %+v", a.g.States()) })

	if got, want := Down(a.g.States(), time.Now()), []string{"vm-a", "vm-b"}; !slices.Equal(got, want) {
		t.Errorf("Down on a = %v; want %v (fresh opinions count whatever their sender's clock says, a 40 s old one does not)", got, want)
	}
	for name, want := range map[string]time.Duration{"ahead": 0, "behind": 0, "old": 40 * time.Second} {
		age := time.Since(a.g.States()[name].Formed)
		if age < want-time.Second || age > want+5*time.Second {
			t.Errorf("%s's opinion is %v old on a; want about %v", name, age, want)
		}
	}
}

// TestLocalStateCarriesAges checks that a state passed on in a push/pull
// carries its age at that moment, so that a member that learns it late
// does not take it for fresh.
func TestLocalStateCarriesAges(t *testing.T) {
	var now time.Time
	clock := func() time.Time { return now }
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g, err := New(testConfig("self"), Deps{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	d := &delegate{g}
	g.memberUp("p")
	raw, _ := encodeState(State{Node: "p", Kind: KindAgent, Endpoints: map[string]bool{"vm-a": false}, Updated: now}, 1, 10*time.Second)
	d.NotifyMsg(append([]byte{msgState}, raw...))
	if age := now.Sub(g.States()["p"].Formed); age != 10*time.Second {
		t.Fatalf("p's state is %v old on arrival; want the 10s its sender gave", age)
	}

	now = now.Add(15 * time.Second)
	other, err := New(testConfig("other"), Deps{Now: func() time.Time { return now.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	other.memberUp("p")
	(&delegate{other}).MergeRemoteState(d.LocalState(false), false)
	st := other.States()["p"]
	if age := now.Add(-time.Hour).Sub(st.Formed); age != 25*time.Second {
		t.Errorf("p's state passed on is %v old; want 25s (10s on arrival, 15s held)", age)
	}
	if got := Down(other.States(), now.Add(-time.Hour)); len(got) != 1 {
		t.Errorf("Down = %v; want [vm-a], 25s is within MaxOpinionAge", got)
	}
	now = now.Add(MaxOpinionAge)
	if got := Down(g.States(), now); len(got) != 0 {
		t.Errorf("Down = %v once the opinion is %v old; want none", got, now.Sub(g.States()["p"].Formed))
	}
}

// TestKeyKeepsOutsidersOut sends, to a member of a keyed cluster, a state
// that says a member of the cluster holds vm-a down, once from a host
// without the key and once from a host with another key, straight to its
// UDP port. Neither is taken: a later state from the real member arrives
// and vm-a is not down.
func TestKeyKeepsOutsidersOut(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef")
	keyed := func(name string, key []byte) Config {
		cfg := testConfig(name)
		cfg.SecretKey = key
		return cfg
	}
	a := startNode(t, keyed("k0", key))
	b := startNode(t, keyed("k1", key), a.g.Addr())
	waitMembers(t, 5*time.Second, []*node{a, b}, []string{"k0", "k1"})
	host, port, _ := net.SplitHostPort(a.g.Addr())
	p, _ := strconv.Atoi(port)
	target := &memberlist.Node{Name: "k0", Addr: net.ParseIP(host), Port: uint16(p)}

	for _, out := range []*node{startNode(t, testConfig("nokey")), startNode(t, keyed("wrongkey", []byte("fedcba9876543210")))} {
		// As k1, with a version far above any it will send.
		forged, _ := encodeState(State{Node: "k1", Kind: KindAgent, Endpoints: map[string]bool{"vm-a": false}, BytesPerSecond: 666, Updated: time.Now()}, 1<<62, 0)
		stranger, _ := encodeState(State{Node: "stranger", Kind: KindAgent, Endpoints: map[string]bool{"vm-a": false}, Updated: time.Now()}, 1, 0)
		for _, msg := range [][]byte{forged, stranger} {
			if err := out.g.ml.Load().SendBestEffort(target, append([]byte{msgState}, msg...)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := out.g.Join([]string{a.g.Addr()}); err == nil {
			t.Errorf("%s joined a keyed cluster", out.name)
		}
	}
	// k1's own state, sent after the forged ones, arrives: k0 has read
	// its socket past them.
	if err := b.g.SetLocal(State{BytesPerSecond: 77}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return a.g.States()["k1"].BytesPerSecond == 77 },
		func() string { return fmt.Sprintf("k0 holds %+v of k1: a forged state was taken", a.g.States()["k1"]) })
	if d := Down(a.g.States(), time.Now()); len(d) != 0 {
		t.Errorf("Down on k0 = %v; want none", d)
	}
	a.g.mu.Lock()
	_, ok := a.g.states["stranger"]
	a.g.mu.Unlock()
	if ok {
		t.Error("k0 stored the state of a stranger without the key")
	}
	waitMembers(t, time.Second, []*node{a, b}, []string{"k0", "k1"})
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k16 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	k32 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	write := func(content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, fmt.Sprintf("key%d", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys, err := LoadKeyFile(write("# fleet key\n"+k32+"\n\n"+k16+"\n", 0o640))
	if err != nil {
		t.Fatal(err)
	}
	if string(keys.Primary) != "0123456789abcdef0123456789abcdef" || len(keys.Extra) != 1 || string(keys.Extra[0]) != "0123456789abcdef" {
		t.Errorf("keys = %q, %q", keys.Primary, keys.Extra)
	}
	cfg := testConfig("x")
	cfg.SecretKey, cfg.ExtraKeys = keys.Primary, keys.Extra
	if err := cfg.Validate(); err != nil {
		t.Errorf("a config with the file's keys: %v", err)
	}
	for _, tt := range []struct {
		content string
		mode    os.FileMode
		want    string
	}{
		{k16 + "\n", 0o644, "open to every user"},
		{"not base64!\n", 0o600, "line 1: not base64"},
		{"\n" + base64.StdEncoding.EncodeToString([]byte("short")) + "\n", 0o600, "line 2: a key of 5 bytes"},
		{"# nothing\n", 0o600, "no key"},
	} {
		if _, err := LoadKeyFile(write(tt.content, tt.mode)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadKeyFile(%q, %04o) = %v; want an error with %q", tt.content, tt.mode, err, tt.want)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file was accepted")
	}
}

// BenchmarkLocalState measures a push/pull's state of 1000 members, each
// encoded again with its age.
func BenchmarkLocalState(b *testing.B) {
	g, err := New(testConfig("self"), Deps{})
	if err != nil {
		b.Fatal(err)
	}
	d := &delegate{g}
	now := time.Now()
	for i := range 1000 {
		name := fmt.Sprintf("host-%04d", i)
		g.memberUp(name)
		raw, _ := encodeState(State{Node: name, Kind: KindAgent, Endpoints: map[string]bool{"vm-a": true, "vm-b": i%7 != 0}, BytesPerSecond: 123456, Updated: now}, 1, time.Second)
		d.NotifyMsg(append([]byte{msgState}, raw...))
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(d.LocalState(false))
	}
	b.SetBytes(int64(n))
}
