package gossip

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.NodeName = "host-1"
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a name: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.NodeName = "" }, "NodeName is empty"},
		{"long name", func(c *Config) { c.NodeName = strings.Repeat("x", 129) }, "NodeName is 129 bytes"},
		{"kind", func(c *Config) { c.Kind = "server" }, `Kind "server"`},
		{"cluster", func(c *Config) { c.Cluster = strings.Repeat("c", 256) }, "Cluster is 256 bytes"},
		{"bind addr", func(c *Config) { c.BindAddr = "localhost" }, `BindAddr "localhost"`},
		{"bind port", func(c *Config) { c.BindPort = 70000 }, "BindPort 70000"},
		{"advertise addr", func(c *Config) { c.AdvertiseAddr = "host" }, `AdvertiseAddr "host"`},
		{"advertise port", func(c *Config) { c.AdvertisePort = -1 }, "AdvertisePort -1"},
		{"gossip interval", func(c *Config) { c.GossipInterval = 0 }, "GossipInterval 0s"},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "ProbeTimeout 500ms"},
		{"suspicion", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult 0"},
		{"refresh", func(c *Config) { c.RefreshInterval = MaxOpinionAge }, "RefreshInterval 30s"},
		{"key", func(c *Config) { c.SecretKey = []byte("short") }, "SecretKey is 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v; want an error with %q", err, tt.want)
			}
			if _, err := New(c, Deps{}); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestMemberlistConfig(t *testing.T) {
	c := DefaultConfig()
	c.NodeName = "h"
	c.AdvertiseAddr = "10.0.0.1"
	mc := c.memberlistConfig(slog.New(slog.DiscardHandler), &delegate{})
	if mc.Name != "h" || mc.BindPort != 7946 || mc.AdvertisePort != 7946 || mc.ProbeInterval != 500*time.Millisecond ||
		mc.SuspicionMult != 3 || mc.SuspicionMaxTimeoutMult != 2 || mc.PushPullInterval != 10*time.Second {
		t.Errorf("memberlist config %+v", mc)
	}
}

func TestLogWriter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mc := DefaultConfig().memberlistConfig(l, &delegate{})
	mc.Logger.Printf("[WARN] memberlist: Was able to connect to %s over TCP but UDP probes failed", "n1")
	got := buf.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, `msg="Was able to connect to n1 over TCP but UDP probes failed"`) ||
		!strings.Contains(got, "memberlist_level=WARN") {
		t.Errorf("logged %q", got)
	}
	buf.Reset()
	quiet := DefaultConfig().memberlistConfig(slog.New(slog.NewTextHandler(&buf, nil)), &delegate{})
	quiet.Logger.Printf("[ERR] memberlist: something")
	if buf.Len() != 0 {
		t.Errorf("logged %q at info level", buf.String())
	}
}

func TestStateEncoding(t *testing.T) {
	s := State{Node: "n", Kind: KindRelay, Endpoints: map[string]bool{"a": true, "b": false}, BytesPerSecond: 9,
		Updated: time.UnixMilli(1_700_000_000_123)}
	raw, err := encodeState(s, 42, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got, v, age, err := decodeState(raw)
	if err != nil || v != 42 || !sameContent(got, s) || !got.Updated.Equal(s.Updated) || age != 1500*time.Millisecond {
		t.Errorf("decode(encode(%+v)) = %+v, %d, age %v, %v (%s)", s, got, v, age, err, raw)
	}
	// Ages are kept within 0..maxWireAge, whoever sent them.
	for in, want := range map[string]time.Duration{`-5`: 0, `99999999999`: maxWireAge, `0`: 0} {
		_, _, age, err := decodeState([]byte(`{"n":"x","k":"agent","u":1,"v":1,"a":` + in + `}`))
		if err != nil || age != want {
			t.Errorf("age %s decoded as %v, %v; want %v", in, age, err, want)
		}
	}
	if raw, _ := encodeState(s, 42, 10*maxWireAge); len(raw) > len(mustEncode(t, s, 42, 0))+ageReserve {
		t.Errorf("the largest age takes more than ageReserve (%d bytes): %s", ageReserve, raw)
	}
	t.Logf("%d bytes: %s", len(raw), raw)

	for _, bad := range []string{`{`, `{"n":"","k":"agent"}`, `{"n":"x","k":"other"}`, `{"n":"x","k":"agent","e":5}`} {
		if _, _, _, err := decodeState([]byte(bad)); err == nil {
			t.Errorf("decodeState(%s) accepted", bad)
		}
	}

	big := State{Node: "n", Kind: KindAgent, Endpoints: map[string]bool{}}
	for i := range 100 {
		big.Endpoints[strings.Repeat("e", 20)+string(rune('A'+i))] = true
	}
	g, err := New(testConfig("n"), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetLocal(big); !errors.Is(err, ErrStateTooLarge) {
		t.Errorf("SetLocal(100 endpoints) = %v; want ErrStateTooLarge", err)
	}
	if len(g.states) != 0 {
		t.Error("a state too large was stored")
	}
}

// TestDelegateIgnoresBadInput feeds the delegate what a broken or hostile
// peer could send.
func TestDelegateIgnoresBadInput(t *testing.T) {
	g, err := New(testConfig("self"), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d := &delegate{g}
	g.memberUp("p")
	for _, b := range [][]byte{nil, {0}, {msgState}, append([]byte{msgState}, `{"n":"p"}`...)} {
		d.NotifyMsg(b)
	}
	for _, b := range [][]byte{nil, {msgStateList}, append([]byte{msgStateList}, `{"f":"p","s":[{"n":"p","k":"x"}]}`...)} {
		d.MergeRemoteState(b, false)
	}
	if len(g.States()) != 0 {
		t.Errorf("States = %v after bad input", g.States())
	}
	// A good state, then an older version of it, then our own name.
	raw, _ := encodeState(State{Node: "p", Kind: KindAgent, BytesPerSecond: 2, Updated: time.Now()}, 10, 0)
	d.NotifyMsg(append([]byte{msgState}, raw...))
	raw, _ = encodeState(State{Node: "p", Kind: KindAgent, BytesPerSecond: 1, Updated: time.Now()}, 9, 0)
	d.MergeRemoteState(append(append([]byte{msgStateList}, `{"f":"p","s":[`+string(raw)...), "]}"...), false)
	raw, _ = encodeState(State{Node: "self", Kind: KindAgent, BytesPerSecond: 1, Updated: time.Now()}, 1<<62, 0)
	d.NotifyMsg(append([]byte{msgState}, raw...))
	if got := g.States()["p"].BytesPerSecond; got != 2 {
		t.Errorf("p's BytesPerSecond = %d; want 2, the newest version", got)
	}
	if _, ok := g.states["self"]; ok {
		t.Error("a remote state under our own name was taken")
	}
}

func mustEncode(t *testing.T, s State, v uint64, age time.Duration) []byte {
	t.Helper()
	raw, err := encodeState(s, v, age)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
