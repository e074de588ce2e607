package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const twoUpstreams = `
upstreams:
  - {name: vm-a, url: "http://127.0.0.1:8428/api/v1/import/prometheus", capacity: 10MiB/s}
  - {name: vm-b, url: "http://127.0.0.1:8429/api/v1/import/prometheus", capacity: 10MiB/s}
`

func mustParseCluster(t *testing.T, doc string) Cluster {
	t.Helper()
	c, err := ParseCluster([]byte(doc))
	if err != nil {
		t.Fatalf("ParseCluster: %v\n%s", err, doc)
	}
	return c
}

// The reference file documents every key with its default: apart from its
// example upstreams and override, it must decode to exactly the defaults.
func TestClusterExampleFileHoldsTheDefaults(t *testing.T) {
	c, err := LoadClusterFile(filepath.Join("..", "deploy", "cluster.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{Name: "vm-a", URL: "http://127.0.0.1:8428/api/v1/import/prometheus", Capacity: 10 << 20},
		{Name: "vm-b", URL: "http://127.0.0.1:8429/api/v1/import/prometheus", Capacity: 10 << 20},
	}
	if !reflect.DeepEqual(c.Endpoints(), want) {
		t.Fatalf("upstreams = %+v; want %+v", c.Endpoints(), want)
	}
	if len(c.Overrides) != 1 {
		t.Fatalf("overrides = %d; want the one example", len(c.Overrides))
	}
	got := c
	got.Upstreams, got.Overrides, got.ScrapeConfigs = nil, nil, nil
	if !reflect.DeepEqual(got, DefaultCluster()) {
		t.Fatalf("example file differs from DefaultCluster():\n got %+v\nwant %+v", got, DefaultCluster())
	}
	a, err := c.AgentConfig("db1", map[string]string{"role": "db"}, DefaultAgent())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Generators.Process.Threads || a.Generators.Diskstats.Interval.D() != 250*time.Millisecond {
		t.Fatalf("example override not applied: %+v", a.Generators)
	}
}

func TestParseClusterErrors(t *testing.T) {
	f := func(doc, want string) {
		t.Helper()
		_, err := ParseCluster([]byte(doc))
		if err == nil {
			t.Fatalf("accepted; want an error containing %q:\n%s", want, doc)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q:\n%s", err, want, doc)
		}
	}
	up := func(name, url, capacity string) string {
		return "  - {name: " + name + ", url: " + url + ", capacity: " + capacity + "}\n"
	}
	a := up("vm-a", "http://a:8428/x", "1MiB/s")
	b := up("vm-b", "http://b:8428/x", "1MiB/s")

	f("", `upstreams: empty; want at least one`)
	f("upstreams: []\n", `upstreams: empty`)
	f("upstreams:\n"+a+up("vm-a", "http://b:8428/x", "1MiB/s"),
		`upstreams[1].name: "vm-a" is also the name of upstreams[0]; want unique names`)
	f("upstreams:\n"+a+up("VM_B", "http://b:8428/x", "1MiB/s"), `upstreams[1].name: "VM_B" is not accepted; want 1 to 63 of a-z`)
	f("upstreams:\n"+up(`""`, "http://b:8428/x", "1MiB/s"), `upstreams[0].name: "" is not accepted`)
	f("upstreams:\n"+a+up("vm-b", "ftp://b/x", "1MiB/s"), `upstreams[1].url: "ftp://b/x" is not accepted; want an http:// or https:// URL`)
	f("upstreams:\n"+a+up("vm-b", `""`, "1MiB/s"), `upstreams[1].url: "" is not accepted`)
	f("upstreams:\n"+a+up("vm-b", "http://a:8428/x", "1MiB/s"), `upstreams[1].url: "http://a:8428/x" is also the url of upstreams[0]`)
	f("upstreams:\n"+a+up("vm-b", "http://b:8428/x", "0"), `upstreams[1].capacity: 0/s is not accepted; want a positive rate such as 10MiB/s`)
	f("upstreams:\n"+a+"  - {name: vm-b, url: http://b:8428/x}\n", `upstreams[1].capacity: 0/s is not accepted`)
	f("upstreams:\n"+up("vm-a", "http://a:8428/x", "fast"), `line 2: "fast" is not a rate`)
	relay := func(name, url string) string {
		return "  - {name: " + name + ", url: " + url + ", capacity: 1MiB/s, relay: true}\n"
	}
	f("upstreams:\n"+relay("r-a", "http://ra:8480/x")+relay("r-b", "http://rb:8480/x"),
		`upstreams: all 2 have relay: true, which leaves relays nowhere to forward; want at least one that is not a relay`)
	f("upstreams:\n"+a+"  - {name: r, url: http://r/x, capacity: 1MiB/s, relay: yes please}\n", `line 3: cannot unmarshal`)
	f("upstreams:\n"+a+b+"ring: {fallbacks: 2}\n", `ring.fallbacks: 2 is not accepted; want 0 to 1 (one less than the 2 upstreams)`)
	f("upstreams:\n"+a+"ring: {fallbacks: 1}\n", `ring.fallbacks: 1 is not accepted; want 0 to 0`)
	f("upstreams:\n"+a+b+"ring: {fallbacks: -1}\n", `ring.fallbacks: -1`)
	f("upstreams:\n"+a+b+"ring: {partitions: 1}\n", `ring.partitions: 1 is not accepted; want 2 (the number of upstreams) to 1048576`)
	f("upstreams:\n"+a+b+"ring: {replicas: 0}\n", `ring.replicas: 0 is not accepted; want 2 to 1000`)
	f("upstreams:\n"+a+b+"ring: {load_factor: 1}\n", `ring.load_factor: 1 is not accepted; want more than 1 and at most 10`)
	f("upstreams:\n"+a+b+"ring: {load_factor: .nan}\n", `ring.load_factor: NaN is not accepted`)
	f("upstreams:\n"+a+b+"status: {interval: 10ms}\n", `status.interval: 10ms is not accepted; want 1s to 10m`)

	// Unknown keys, with their line, at every level.
	f("upstreams:\n"+a+b+"rings: {}\n", `line 4: unknown key rings (see deploy/cluster.example.yaml for the keys accepted)`)
	f("upstreams:\n"+a+"  - {name: vm-b, url: http://b:8428/x, capacity: 1MiB/s, weight: 2}\n", `line 3: unknown key weight`)
	f("upstreams:\n"+a+b+"agents:\n  generators:\n    statt: {}\n", `line 6: unknown key statt`)
	f("upstreams:\n"+a+b+"agents:\n  hostname: x\n", `line 5: unknown key hostname`)
	f("upstreams:\n"+a+b+"agents:\n  ship: {upstreams: [http://c/x]}\n", `line 5: unknown key upstreams`)
	f("upstreams:\n"+a+b+"overrides:\n  - match: {nodes: [h1]}\n    agents:\n      generators:\n        stat: {intervall: 1s}\n",
		`overrides[0].agents.generators.stat: line 8: unknown key intervall (see deploy/cluster.example.yaml`)
	f("upstreams:\n"+a+b+"overrides:\n  - match: {nodes: [h1]}\n    agents: {listen: ':1'}\n",
		`overrides[0].agents: line 6: unknown key listen`)
	f("upstreams:\n"+a+b+"overrides:\n  - match: {nodes: [h1]}\n    agents: {ship: {upstreams: [http://c/x]}}\n",
		`overrides[0].agents.ship: line 6: unknown key upstreams`)
	f("upstreams:\n"+a+b+"overrides:\n  - match: {node: [h1]}\n    agents: {job: x}\n", `line 5: unknown key node`)
	f("upstreams:\n"+a+b+"overrides:\n  - match: {nodes: [h1]}\n    agents: {job: x}\n    when: never\n", `line 7: unknown key when`)

	// Overrides: match and agents.
	ov := func(match, agents string) string {
		s := "upstreams:\n" + a + b + "overrides:\n  - {job: x}\n  - "
		if match != "" {
			s += "match: " + match + "\n    "
		}
		if agents != "" {
			s += "agents: " + agents + "\n"
		}
		return strings.Replace(s, "{job: x}", "{match: {nodes: [h0]}, agents: {job: x}}", 1)
	}
	f(ov("", "{job: x}"), `overrides[1].match: empty; want nodes: [NAME, ...], labels: {KEY: VALUE, ...} or both`)
	f(ov("{nodes: [], labels: {}}", "{job: x}"), `overrides[1].match: empty`)
	f(ov("{nodes: [h1]}", ""), `overrides[1].agents: missing; want the agent settings to change`)
	f(ov("{nodes: [h1]}", "{}"), `overrides[1].agents: line 7: empty`)
	f(ov("{nodes: [h1]}", "nope"), `overrides[1].agents: line 7: "nope" is not accepted; want a mapping`)
	f(ov("{nodes: [h1]}", "{generators: 5}"), `overrides[1].agents.generators: line 7: "5" is not accepted; want a mapping`)
	f(ov("{nodes: ['h 1']}", "{job: x}"), `overrides[1].match.nodes[0]: node name "h 1" is not accepted`)
	f(ov("{labels: {'bad key': x}}", "{job: x}"), `overrides[1].match.labels: key "bad key" is not accepted; want 1 to 63 of`)
	f(ov("{labels: {role: ''}}", "{job: x}"), `overrides[1].match.labels: role: value "" is not accepted; want 1 to 253 printable characters without spaces`)
	f(ov("{labels: {role: 'a b'}}", "{job: x}"), `value "a b" is not accepted`)
	f(ov("{nodes: [h1]}", "{generators: {stat: {interval: 10ms}}}"),
		`overrides[1].agents.generators.stat.interval: 10ms is not accepted; want 100ms to 1h`)
	f(ov("{nodes: [h1]}", "{generators: {stat: {interval: soon}}}"), `overrides[1].agents: line 7: "soon" is not a duration`)
	f(ov("{nodes: [h1]}", "{full_every: lots}"), `overrides[1].agents: line 7: cannot unmarshal !!str`)
	f(ov("{nodes: [h1]}", "{job: x, job: y}"), `overrides[1].agents: line 7: mapping key "job" already defined`)
	f(ov("{nodes: [h1]}", "{ship: {auth: {username: u}}}"), `overrides[1].agents.ship.auth.username: line 7: not accepted in the cluster config`)
	f(ov("{nodes: [h1]}", "{ship: {credential: Vm}}"), `overrides[1].agents.ship.credential: "Vm" is not accepted; want 1 to 63 of a-z`)
	f("upstreams:\n"+a+"  - {name: vm-b, url: http://b:8428/x, capacity: 1MiB/s, credential: a/b}\n",
		`upstreams[1].credential: "a/b" is not accepted`)
	f("upstreams:\n"+a+b+"agents: {compress: {level: 10}}\n", `agents.compress.level: 10 is not accepted; want 1 (fastest) to 9 (smallest)`)
	f("upstreams:\n"+a+b+"agents: {ship: {queue_bytes: 4KiB}}\n", `agents.ship.queue_bytes: 4KiB is not accepted; want 0 (no bound) or 64KiB or more`)
	f("upstreams:\n"+a+b+"agents: {compress: {encoding: lz4}}\n", `agents.compress.encoding: "lz4" is not accepted; want gzip or zstd`)
	f("upstreams:\n"+a+b+"---\nring: {}\n", `more than one YAML document`)
}

// clusterWithOverrides parses twoUpstreams plus doc.
func clusterWithOverrides(t *testing.T, doc string) Cluster {
	t.Helper()
	return mustParseCluster(t, twoUpstreams+doc)
}

func TestAgentConfigOverlay(t *testing.T) {
	c := clusterWithOverrides(t, `
agents:
  full_every: 20
  generators:
    stat: {interval: 2s}
  ship: {probe_interval: 7s}
overrides:
  - match: {labels: {role: db}}
    agents:
      generators:
        stat: {interval: 500ms}
        process: {threads: true}
  - match: {nodes: [db1, web1]}
    agents:
      generators:
        stat: {interval: 250ms, enabled: false}
      log: {level: debug}
  - match: {nodes: [db2], labels: {role: db, zone: b}}
    agents: {job: special}
`)
	local := DefaultAgent()
	local.Hostname, local.Listen, local.ProcfsRoot, local.SysfsRoot = "host-1", "127.0.0.1:9999", "/host/proc", "/host/sys"
	local.Job, local.FullEvery = "local-job", 3 // cluster keys: replaced
	local.Ship.Upstreams = []string{"http://local:8428/x"}
	local.Limit = Limit{BytesPerSecond: 1 << 20}

	get := func(node string, labels map[string]string) Agent {
		t.Helper()
		a, err := c.AgentConfig(node, labels, local)
		if err != nil {
			t.Fatalf("AgentConfig(%s, %v): %v", node, labels, err)
		}
		return a
	}

	// No override: the agents block over the defaults, local keys kept.
	a := get("other", nil)
	if a.Hostname != "host-1" || a.Listen != "127.0.0.1:9999" || a.ProcfsRoot != "/host/proc" || a.SysfsRoot != "/host/sys" {
		t.Fatalf("local settings lost: %+v", a)
	}
	if a.Limit != local.Limit {
		t.Fatalf("limit = %+v; want the local one", a.Limit)
	}
	if a.Ship.Upstreams != nil {
		t.Fatalf("ship.upstreams = %v; want none (the ring assigns them)", a.Ship.Upstreams)
	}
	if a.Job != "procfleet" || a.FullEvery != 20 || a.Ship.ProbeInterval.D() != 7*time.Second {
		t.Fatalf("agents block not applied: job %q full_every %d probe %s", a.Job, a.FullEvery, a.Ship.ProbeInterval)
	}
	if a.Generators.Stat != (Generator{Enabled: true, Interval: Duration(2 * time.Second)}) {
		t.Fatalf("stat = %+v", a.Generators.Stat)
	}

	// Label match: only the keys present change.
	a = get("db7", map[string]string{"role": "db", "zone": "a"})
	want := c.Agents
	want.Generators.Stat.Interval = Duration(500 * time.Millisecond)
	want.Generators.Process.Threads = true
	if got := clusterAgentsOf(a); !reflect.DeepEqual(got, want) {
		t.Fatalf("label override:\n got %+v\nwant %+v", got, want)
	}

	// Node match, and two overrides in order: the later wins on stat.
	a = get("db1", map[string]string{"role": "db"})
	want.Generators.Stat = Generator{Enabled: false, Interval: Duration(250 * time.Millisecond)}
	want.Log.Level = "debug"
	if got := clusterAgentsOf(a); !reflect.DeepEqual(got, want) {
		t.Fatalf("two overrides:\n got %+v\nwant %+v", got, want)
	}
	a = get("web1", map[string]string{"role": "web"})
	if a.Generators.Process.Threads || a.Generators.Stat.Interval.D() != 250*time.Millisecond || a.Log.Level != "debug" {
		t.Fatalf("node override: %+v", a)
	}

	// Nodes and labels together: both must hold.
	f := func(node string, labels map[string]string, job string) {
		t.Helper()
		if a := get(node, labels); a.Job != job {
			t.Fatalf("AgentConfig(%s, %v).job = %q; want %q", node, labels, a.Job, job)
		}
	}
	f("db2", map[string]string{"role": "db", "zone": "b", "extra": "x"}, "special")
	f("db2", map[string]string{"role": "db"}, "procfleet")
	f("db3", map[string]string{"role": "db", "zone": "b"}, "procfleet")
	f("db2", nil, "procfleet")
}

func TestAgentConfigErrors(t *testing.T) {
	// Each override is valid alone; together they are not.
	c := clusterWithOverrides(t, `
overrides:
  - match: {labels: {role: db}}
    agents: {ship: {retry: {min_backoff: 20s}}}
  - match: {nodes: [db1]}
    agents: {ship: {retry: {max_backoff: 10s}}}
`)
	if _, err := c.AgentConfig("db2", map[string]string{"role": "db"}, DefaultAgent()); err != nil {
		t.Fatalf("one override: %v", err)
	}
	if _, err := c.AgentConfig("db1", nil, DefaultAgent()); err != nil {
		t.Fatalf("other override: %v", err)
	}
	_, err := c.AgentConfig("db1", map[string]string{"role": "db"}, DefaultAgent())
	if err == nil || !strings.Contains(err.Error(), "overrides[1].agents.ship.retry.max_backoff: 10s is below retry.min_backoff 20s") {
		t.Fatalf("AgentConfig = %v; want an error naming overrides[1]", err)
	}

	local := DefaultAgent()
	local.Listen = "nope"
	_, err = c.AgentConfig("x", nil, local)
	if err == nil || !strings.Contains(err.Error(), `local agent settings: listen: "nope"`) {
		t.Fatalf("AgentConfig with a bad local listen = %v", err)
	}
}

func TestOverrideMatches(t *testing.T) {
	f := func(m OverrideMatch, node string, labels map[string]string, want bool) {
		t.Helper()
		if got := m.Matches(node, labels); got != want {
			t.Fatalf("%+v.Matches(%q, %v) = %v; want %v", m, node, labels, got, want)
		}
	}
	db := map[string]string{"role": "db", "zone": "a"}
	f(OverrideMatch{}, "h1", db, false)
	f(OverrideMatch{Nodes: []string{"h1", "h2"}}, "h2", nil, true)
	f(OverrideMatch{Nodes: []string{"h1", "h2"}}, "h3", db, false)
	f(OverrideMatch{Labels: map[string]string{"role": "db"}}, "h3", db, true)
	f(OverrideMatch{Labels: map[string]string{"role": "db", "zone": "b"}}, "h3", db, false)
	f(OverrideMatch{Labels: map[string]string{"rack": "1"}}, "h3", db, false)
	f(OverrideMatch{Nodes: []string{"h1"}, Labels: map[string]string{"role": "db"}}, "h1", db, true)
	f(OverrideMatch{Nodes: []string{"h1"}, Labels: map[string]string{"role": "db"}}, "h2", db, false)
	f(OverrideMatch{Nodes: []string{"h1"}, Labels: map[string]string{"role": "db"}}, "h1", nil, false)
}

// stripPositions clears what a parse records about where a node was, so
// that overrides can be compared by content.
func stripPositions(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		stripPositions(c)
	}
}

func TestClusterRoundTrip(t *testing.T) {
	f := func(doc string) {
		t.Helper()
		c1 := mustParseCluster(t, doc)
		out, err := MarshalCluster(c1)
		if err != nil {
			t.Fatal(err)
		}
		c2 := mustParseCluster(t, string(out))
		out2, err := MarshalCluster(c2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable:\n%s\n---\n%s", out, out2)
		}
		for i := range c1.Overrides {
			stripPositions(&c1.Overrides[i].Agents)
			stripPositions(&c2.Overrides[i].Agents)
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\n%s", c2, c1, out)
		}
	}
	f(twoUpstreams)
	f(twoUpstreams + "  - {name: relay-1, url: \"http://relay-1:8480/api/v1/import/prometheus\", capacity: 1MiB/s, relay: true}\n")
	f(twoUpstreams + `
ring: {fallbacks: 0, partitions: 4099, replicas: 50, load_factor: 1.1}
agents:
  job: fleet
  generators: {process: {threads: true, cmdline_max_bytes: 1024}}
  compress: {encoding: zstd, target_bytes: 1MB, flush_age: 1500ms}
  ship: {credential: vm-writer, queue_bytes: 8MiB}
overrides:
  - match: {nodes: [a, b], labels: {role: db}}
    agents:
      generators: {stat: {interval: 250ms}}
      log: {format: json}
  - match: {labels: {"example.com/tier": gold}}
    agents: {full_every: 60, ship: {credential: gold-writer}}
status: {interval: 30s}
`)
	f(twoUpstreams + "  - {name: vm-c, url: \"http://127.0.0.1:8430/api/v1/import/prometheus\", capacity: 1MiB/s, credential: vm-c}\n")
	data, err := os.ReadFile(filepath.Join("..", "deploy", "cluster.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f(string(data))
}

func TestClusterAccessors(t *testing.T) {
	c := mustParseCluster(t, twoUpstreams)
	if got := c.UpstreamNames(); !reflect.DeepEqual(got, []string{"vm-a", "vm-b"}) {
		t.Fatalf("UpstreamNames = %v", got)
	}
	e, ok := c.Endpoint("vm-b")
	if !ok || e != (Endpoint{Name: "vm-b", URL: "http://127.0.0.1:8429/api/v1/import/prometheus", Capacity: 10 << 20}) {
		t.Fatalf("Endpoint(vm-b) = %+v, %v", e, ok)
	}
	if _, ok := c.Endpoint("vm-c"); ok {
		t.Fatal("Endpoint(vm-c) found")
	}
}

func TestClusterRelayUpstreams(t *testing.T) {
	c := mustParseCluster(t, `
upstreams:
  - {name: vm, url: "http://vm:8428/api/v1/import/prometheus", capacity: 10MiB/s}
  - {name: relay-up, url: "http://relay:8480/api/v1/import/prometheus", capacity: 5MiB/s, relay: true}
`)
	want := []Endpoint{
		{Name: "vm", URL: "http://vm:8428/api/v1/import/prometheus", Capacity: 10 << 20},
		{Name: "relay-up", URL: "http://relay:8480/api/v1/import/prometheus", Capacity: 5 << 20, Relay: true},
	}
	if got := c.Endpoints(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Endpoints = %+v; want %+v", got, want)
	}
	if e, ok := c.Endpoint("relay-up"); !ok || e != want[1] {
		t.Fatalf("Endpoint(relay-up) = %+v, %v", e, ok)
	}
}

func TestDefaultClusterAgentsAreTheAgentDefaults(t *testing.T) {
	a := DefaultAgent()
	DefaultCluster().Agents.applyTo(&a)
	if !reflect.DeepEqual(a, DefaultAgent()) {
		t.Fatalf("DefaultCluster().Agents differs from DefaultAgent():\n got %+v\nwant %+v", a, DefaultAgent())
	}
}

func TestLoadClusterFileNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte("upstreams: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadClusterFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":") {
		t.Fatalf("error does not start with the file name: %v", err)
	}
}

// Every key of the agent document is either set by the cluster
// (ClusterAgents, ClusterShip) or deliberately left to the host or the ring:
// a key added to Agent or Ship must be placed in one or the other here.
func TestClusterAgentsCoverTheAgentDocument(t *testing.T) {
	// Keys of the cluster document with no counterpart in the agent's:
	// names that a member resolves against the host's credentials.
	clusterOnly := map[string]bool{"credential": true}
	f := func(full, central reflect.Type, notCentral ...string) {
		t.Helper()
		keys := func(t reflect.Type) map[string]bool {
			m := map[string]bool{}
			for i := range t.NumField() {
				k := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
				// Not keys: fields no file sets, and host-local keys
				// the cluster document refuses.
				if k != "-" && t.Field(i).Type != reflect.TypeFor[hostLocal]() {
					m[k] = true
				}
			}
			return m
		}
		have, all := keys(central), keys(full)
		for _, k := range notCentral {
			if have[k] {
				t.Errorf("%s: %s is both central and not", central, k)
			}
			have[k] = true
		}
		for k := range all {
			if !have[k] {
				t.Errorf("%s.%s is neither in %s nor listed as local or ring-owned", full, k, central)
			}
		}
		for k := range have {
			if !all[k] && !clusterOnly[k] {
				t.Errorf("%s has %s, which %s lacks", central, k, full)
			}
		}
	}
	f(reflect.TypeFor[Agent](), reflect.TypeFor[ClusterAgents](), "hostname", "listen", "procfs_root", "sysfs_root", "limit", "spool", "debug", "credentials")
	f(reflect.TypeFor[Ship](), reflect.TypeFor[ClusterShip](), "upstreams", "strategy", "auth", "tls", "protocols")
}

func TestAgentConfigRingOwnsUpstreamsAndStrategy(t *testing.T) {
	c := mustParseCluster(t, twoUpstreams)
	local := DefaultAgent()
	local.Ship.Upstreams = []string{"http://local:8428/x"}
	local.Ship.Strategy = StrategyRoundRobin
	a, err := c.AgentConfig("h1", nil, local)
	if err != nil {
		t.Fatal(err)
	}
	if a.Ship.Upstreams != nil || a.Ship.Strategy != StrategyOrdered {
		t.Fatalf("ship.upstreams %v, ship.strategy %q; want none and %q", a.Ship.Upstreams, a.Ship.Strategy, StrategyOrdered)
	}
}

// Anchors, aliases and merge keys inside overrides are checked like the
// rest, and overlay only what they hold.
func TestOverrideAliases(t *testing.T) {
	c := mustParseCluster(t, twoUpstreams+`
overrides:
  - match: {nodes: [a]}
    agents: &fast {generators: {stat: {interval: 250ms}}}
  - match: {nodes: [b]}
    agents: *fast
  - match: {nodes: [c]}
    agents: {<<: *fast, job: c}
`)
	for _, node := range []string{"a", "b", "c"} {
		a, err := c.AgentConfig(node, nil, DefaultAgent())
		if err != nil {
			t.Fatal(err)
		}
		if a.Generators.Stat != (Generator{Enabled: true, Interval: Duration(250 * time.Millisecond)}) {
			t.Fatalf("%s: stat = %+v", node, a.Generators.Stat)
		}
	}
	_, err := ParseCluster([]byte(twoUpstreams + `
overrides:
  - match: {nodes: [a]}
    agents: &bad {generators: {stat: {intervall: 250ms}}}
  - match: {nodes: [c]}
    agents: {<<: *bad, job: c}
`))
	if err == nil || !strings.Contains(err.Error(), "overrides[0].agents.generators.stat: line 8: unknown key intervall") {
		t.Fatalf("ParseCluster = %v; want the unknown key of overrides[0]", err)
	}
}

// agents.ship.redeliver_window and redeliver_max_bytes are cluster keys:
// the cluster sets them, an override changes them, and 0 turns redelivery
// off for the agents it matches.
func TestAgentConfigRedeliverWindow(t *testing.T) {
	c := clusterWithOverrides(t, `
agents:
  ship: {redeliver_window: 20s, redeliver_max_bytes: 4MiB}
overrides:
  - match: {nodes: [small]}
    agents:
      ship: {redeliver_window: 0s}
`)
	f := func(node string, window time.Duration, maxBytes ByteSize) {
		t.Helper()
		a, err := c.AgentConfig(node, nil, DefaultAgent())
		if err != nil {
			t.Fatal(err)
		}
		if a.Ship.RedeliverWindow.D() != window || a.Ship.RedeliverMaxBytes != maxBytes {
			t.Fatalf("%s: ship.redeliver_window %s, redeliver_max_bytes %d; want %s and %d",
				node, a.Ship.RedeliverWindow, a.Ship.RedeliverMaxBytes, window, maxBytes)
		}
	}
	f("other", 20*time.Second, 4<<20)
	f("small", 0, 4<<20)
	if _, err := ParseCluster([]byte(twoUpstreams + "agents:\n  ship: {redeliver_window: 1h}\n")); err == nil ||
		!strings.Contains(err.Error(), "agents.ship.redeliver_window") {
		t.Fatalf("redeliver_window 1h: %v; want an error naming agents.ship.redeliver_window", err)
	}
}

// TestAgentConfigStreamFor: agents.ship.stream_for is a cluster key,
// overridable, checked with its path.
func TestAgentConfigStreamFor(t *testing.T) {
	c := clusterWithOverrides(t, `
agents:
  ship: {stream_for: 10s}
overrides:
  - match: {nodes: [small]}
    agents:
      ship: {stream_for: 0s}
`)
	for node, want := range map[string]time.Duration{"other": 10 * time.Second, "small": 0} {
		a, err := c.AgentConfig(node, nil, DefaultAgent())
		if err != nil {
			t.Fatal(err)
		}
		if a.Ship.StreamFor.D() != want {
			t.Fatalf("%s: ship.stream_for %s; want %s", node, a.Ship.StreamFor, want)
		}
	}
	if _, err := ParseCluster([]byte(twoUpstreams + "agents:\n  ship: {stream_for: 1s}\n")); err == nil ||
		!strings.Contains(err.Error(), "agents.ship.stream_for") {
		t.Fatalf("stream_for 1s: %v; want an error naming agents.ship.stream_for", err)
	}
}

// TestRingFallbacksDefaultFitsTheDocument checks that a document without
// ring.fallbacks is accepted whatever its number of upstreams: the
// default is 1, or 0 with a single upstream (before, a document with one
// upstream and no ring section was refused: "ring.fallbacks: 1 is not
// accepted; want 0 to 0"). A value the document sets is kept and checked.
func TestRingFallbacksDefaultFitsTheDocument(t *testing.T) {
	up := func(i int) string {
		return fmt.Sprintf("  - {name: vm-%d, url: \"http://10.0.0.%d:8428/api/v1/import/prometheus\", capacity: 1MiB/s}\n", i, i)
	}
	f := func(upstreams int, ring string, want int) {
		t.Helper()
		doc := "upstreams:\n"
		for i := range upstreams {
			doc += up(i + 1)
		}
		doc += ring
		c := mustParseCluster(t, doc)
		if c.Ring.Fallbacks != want {
			t.Errorf("%d upstreams, %q: ring.fallbacks = %d, want %d", upstreams, ring, c.Ring.Fallbacks, want)
		}
		// What MarshalCluster writes reads back the same.
		out, err := MarshalCluster(c)
		if err != nil {
			t.Fatal(err)
		}
		if back := mustParseCluster(t, string(out)); back.Ring != c.Ring {
			t.Errorf("%d upstreams, %q: round trip ring %+v, want %+v", upstreams, ring, back.Ring, c.Ring)
		}
	}
	f(1, "", 0)
	f(1, "ring: {partitions: 7}\n", 0)
	f(1, "ring: {fallbacks: 0}\n", 0)
	f(2, "", 1)
	f(3, "ring: {load_factor: 2}\n", 1)
	f(3, "ring: {fallbacks: 2}\n", 2)
	f(3, "ring: {fallbacks: 0}\n", 0)
	for n, want := range map[int]int{0: 0, 1: 0, 2: 1, 100: 1} {
		if got := DefaultFallbacks(n); got != want {
			t.Errorf("DefaultFallbacks(%d) = %d, want %d", n, got, want)
		}
	}
}
