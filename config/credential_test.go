package config

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A cluster document must not make a host read a file or trust another
// server: every host-local key is refused with its path and line and with
// how to name a credential instead, in agents and in overrides, however
// the YAML is written.
func TestClusterRefusesHostLocalKeys(t *testing.T) {
	const help = "not accepted in the cluster config: credentials and TLS settings are host-local and never come from etcd. " +
		"Define the credential in each host's own file (agent.yaml, relay.yaml) under credentials:"
	f := func(doc, want string) {
		t.Helper()
		_, err := ParseCluster([]byte(twoUpstreams + doc))
		if err == nil {
			t.Fatalf("accepted; want an error starting with %q:\n%s", want, doc)
		}
		if !strings.HasPrefix(err.Error(), want+help) || !strings.Contains(err.Error(), "upstreams[].credential: NAME or agents.ship.credential: NAME") {
			t.Fatalf("error %q\nwant it to start with %q and say how to name a credential:\n%s", err, want+help, doc)
		}
	}
	// The fault of issue 12: any file of the host, sent as basic auth.
	// twoUpstreams takes lines 1 to 4.
	f("agents:\n  ship:\n    auth:\n      password_file: /etc/shadow\n      username: x\n",
		"agents.ship.auth.password_file: line 8: ")
	f("agents:\n  ship:\n    auth: {username: x, password_file: /etc/shadow}\n", "agents.ship.auth.username: line 7: ")
	f("agents: {ship: {auth: {bearer_token_file: /etc/shadow}}}\n", "agents.ship.auth.bearer_token_file: line 5: ")
	f("agents: {ship: {tls: {insecure_skip_verify: true}}}\n", "agents.ship.tls.insecure_skip_verify: line 5: ")
	f("agents: {ship: {tls: {ca_file: /etc/shadow}}}\n", "agents.ship.tls.ca_file: line 5: ")
	f("agents: {ship: {tls: {cert_file: /a, key_file: /b}}}\n", "agents.ship.tls.cert_file: line 5: ")
	f("agents: {ship: {tls: {server_name: evil}}}\n", "agents.ship.tls.server_name: line 5: ")
	f("agents: {ship: {auth: /etc/shadow}}\n", "agents.ship.auth: line 5: ")
	// The same in overrides, which each agent applies on its own.
	ov := "overrides:\n  - match: {nodes: [h0]}\n    agents: {job: x}\n  - match: {labels: {role: db}}\n    agents:\n"
	f(ov+"      ship: {auth: {password_file: /etc/shadow}}\n", "overrides[1].agents.ship.auth.password_file: line 10: ")
	f(ov+"      ship:\n        tls:\n          insecure_skip_verify: true\n", "overrides[1].agents.ship.tls.insecure_skip_verify: line 12: ")
	// Anchors, aliases and merge keys hide nothing.
	f("agents: {job: &p /etc/shadow, ship: {auth: {bearer_token_file: *p}}}\n", "agents.ship.auth.bearer_token_file: line 5: ")
	f("agents: {ship: {auth: &a {bearer_token_file: /etc/shadow}}}\n"+ov+"      ship: {auth: *a}\n",
		"agents.ship.auth.bearer_token_file: line 5: ")
	f("x-auth: &a {password_file: /etc/shadow, username: u}\n"+ov+"      ship: {auth: {<<: *a}}\n",
		"overrides[1].agents.ship.auth.password_file: line 5: ")
	f("x-ship: &s {tls: {insecure_skip_verify: true}}\nagents: {ship: {<<: *s}}\n",
		"agents.ship.tls.insecure_skip_verify: line 5: ")
}

// Documents written before credentials were host-local hold empty auth and
// tls blocks (cluster bootstrap wrote them, the reference file had them):
// they set nothing and stay valid, and the agents block does not write
// them back (overrides are kept as written).
func TestClusterAcceptsEmptyHostLocalBlocks(t *testing.T) {
	f := func(doc string) {
		t.Helper()
		c := mustParseCluster(t, twoUpstreams+doc)
		out, err := MarshalCluster(c)
		if err != nil {
			t.Fatal(err)
		}
		if c.Overrides == nil && (strings.Contains(string(out), "auth") || strings.Contains(string(out), "tls")) {
			t.Fatalf("marshalled document holds auth or tls:\n%s", out)
		}
		mustParseCluster(t, string(out))
		a, err := c.AgentConfig("h1", nil, DefaultAgent())
		if err != nil {
			t.Fatal(err)
		}
		if a.Ship.Auth != (ShipAuth{}) || a.Ship.TLS != (ShipTLS{}) || a.Ship.Credentials != nil {
			t.Fatalf("empty blocks set something: auth %+v, tls %+v, credentials %v", a.Ship.Auth, a.Ship.TLS, a.Ship.Credentials)
		}
	}
	f(`agents:
  ship:
    auth:
      username: ""
      password_file: ""
      bearer_token_file: ""
    tls:
      ca_file: ""
      cert_file: ""
      key_file: ""
      server_name: ""
      insecure_skip_verify: false
`)
	f("agents: {ship: {auth: ~, tls: {}}}\n")
	f("overrides:\n  - match: {nodes: [h1]}\n    agents: {ship: {auth: {username: ''}, tls: {insecure_skip_verify: false}}}\n")
}

// The cluster names credentials; the host defines them. Each upstream gets
// its own credential, else agents.ship.credential (which overrides may
// change), else none; the files always come from the host's document.
func TestAgentConfigResolvesCredentials(t *testing.T) {
	c := mustParseCluster(t, `
upstreams:
  - {name: vm-a, url: "http://a:8428/x", capacity: 1MiB/s, credential: vm-a-writer}
  - {name: vm-b, url: "http://b:8428/x", capacity: 1MiB/s}
  - {name: vm-c, url: "http://c:8428/x", capacity: 1MiB/s, credential: nowhere}
agents:
  ship: {credential: vm-writer}
overrides:
  - match: {nodes: [h2]}
    agents: {ship: {credential: h2-writer}}
`)
	local := DefaultAgent()
	local.ConfigFile = "/etc/procfleet/agent.yaml"
	local.Ship.Auth = ShipAuth{BearerTokenFile: "/etc/procfleet/default.token"}
	aw := Credential{ShipAuth: ShipAuth{BearerTokenFile: "/etc/procfleet/vm-a.token"}}
	w := Credential{ShipAuth: ShipAuth{Username: "w", PasswordFile: "/etc/procfleet/vm.password"}, TLS: ShipTLS{CAFile: "/etc/procfleet/ca.pem"}}
	local.Credentials = map[string]Credential{"vm-a-writer": aw, "vm-writer": w}
	nowhere := UpstreamCredential{Upstream: "vm-c", Name: "nowhere",
		Problem: `upstream vm-c: credential "nowhere" is not defined in this host's credentials (credentials: in /etc/procfleet/agent.yaml); not sending there`}
	f := func(node string, want map[string]UpstreamCredential) {
		t.Helper()
		a, err := c.AgentConfig(node, nil, local)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Ship.Credentials, want) {
			t.Fatalf("%s: ship.credentials = %+v\nwant %+v", node, a.Ship.Credentials, want)
		}
		if a.Ship.Auth != local.Ship.Auth {
			t.Fatalf("%s: ship.auth = %+v; want the host's own %+v", node, a.Ship.Auth, local.Ship.Auth)
		}
		a.Ship.Upstreams = []string{"http://c:8428/x", "http://a:8428/x"}
		if got := a.Ship.CredentialProblems(); !reflect.DeepEqual(got, []string{nowhere.Problem}) {
			t.Fatalf("%s: CredentialProblems = %q", node, got)
		}
	}
	f("h1", map[string]UpstreamCredential{
		"http://a:8428/x": {Upstream: "vm-a", Name: "vm-a-writer", Credential: aw},
		"http://b:8428/x": {Upstream: "vm-b", Name: "vm-writer", Credential: w},
		"http://c:8428/x": nowhere,
	})
	f("h2", map[string]UpstreamCredential{
		"http://a:8428/x": {Upstream: "vm-a", Name: "vm-a-writer", Credential: aw},
		"http://b:8428/x": {Upstream: "vm-b", Name: "h2-writer",
			Problem: `upstream vm-b: credential "h2-writer" is not defined in this host's credentials (credentials: in /etc/procfleet/agent.yaml); not sending there`},
		"http://c:8428/x": nowhere,
	})

	// Without a credential name anywhere the host's ship.auth applies.
	a, err := mustParseCluster(t, twoUpstreams).AgentConfig("h1", nil, local)
	if err != nil {
		t.Fatal(err)
	}
	if a.Ship.Credentials != nil || a.Ship.Auth != local.Ship.Auth {
		t.Fatalf("no names: credentials %v, auth %+v", a.Ship.Credentials, a.Ship.Auth)
	}
	// Without a config file the message says so.
	local.ConfigFile = ""
	a, err = c.AgentConfig("h1", nil, local)
	if err != nil {
		t.Fatal(err)
	}
	if p := a.Ship.Credentials["http://c:8428/x"].Problem; !strings.Contains(p, "(none: no --config file)") {
		t.Fatalf("problem without a file: %q", p)
	}
}

func TestHostCredentials(t *testing.T) {
	a, err := ParseAgent([]byte(`
credentials:
  vm-writer:
    bearer_token_file: /etc/procfleet/vm.token
    tls: {ca_file: /etc/procfleet/ca.pem, insecure_skip_verify: true}
  relay:
    username: agent
    password_file: /etc/procfleet/relay.password
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Credential{
		"vm-writer": {ShipAuth: ShipAuth{BearerTokenFile: "/etc/procfleet/vm.token"},
			TLS: ShipTLS{CAFile: "/etc/procfleet/ca.pem", InsecureSkipVerify: true}},
		"relay": {ShipAuth: ShipAuth{Username: "agent", PasswordFile: "/etc/procfleet/relay.password"}},
	}
	if !reflect.DeepEqual(a.Credentials, want) {
		t.Fatalf("credentials = %+v; want %+v", a.Credentials, want)
	}
	f := func(doc, want string) {
		t.Helper()
		_, errA := ParseAgent([]byte(doc))
		r, errR := ParseRelay([]byte(doc))
		if errR == nil {
			r.WAL.Dir = "/var/lib/procfleet/relay"
			errR = r.Validate()
		}
		for _, err := range []error{errA, errR} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%q: error %v; want one containing %q", doc, err, want)
			}
		}
	}
	f("credentials: {VM: {bearer_token_file: /t}}\n", `credentials: "VM" is not accepted; want 1 to 63 of a-z`)
	f("credentials: {vm: {bearer_token_file: /t, username: u, password_file: /p}}\n",
		"credentials.vm: bearer_token_file and username/password_file are both set")
	f("credentials: {vm: {username: u}}\n", "credentials.vm: username and password_file go together")
	f("credentials: {vm: {tls: {cert_file: /c}}}\n", "credentials.vm: cert_file and key_file go together")
	f("credentials: {vm: {token_file: /t}}\n", "line 1: unknown key token_file")
}

// pathKey matches key names that name a host file or switch a check off.
var pathKey = regexp.MustCompile(`(^|[._])(file|files|dir|path|root)$|insecure`)

// pathKeys returns the keys under typ, path being its own, whose names
// match pathKey.
func pathKeys(typ reflect.Type, path string, seen map[reflect.Type]bool) []string {
	for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map || typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeFor[hostLocal]() {
		return nil
	}
	seen[typ] = true
	defer delete(seen, typ)
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "-" {
			continue
		}
		if key != "" {
			key = path + "." + key
		} else {
			key = path // inline
		}
		if pathKey.MatchString(key) {
			out = append(out, key)
		}
		ft := f.Type
		if ft == reflect.TypeFor[yaml.Node]() { // overrides[].agents, kept as a node
			ft = reflect.TypeFor[ClusterAgents]()
		}
		out = append(out, pathKeys(ft, key, seen)...)
	}
	return out
}

// No key of the cluster document, at any depth, names a host file (to read
// or to write) or turns a check off: such keys belong in the host's own
// file. A new one fails here and must be refused like ship.auth and ship.tls.
func TestClusterDocumentHasNoHostPaths(t *testing.T) {
	// Not host files: an HTTP path on the target, and file names confined
	// to the host's file_sd directory (TestFileSDNamesStayInTheDirectory).
	allowed := map[string]bool{".scrape_configs.metrics_path": true, ".scrape_configs.file_sd_configs.files": true}
	keys := slices.DeleteFunc(pathKeys(reflect.TypeFor[Cluster](), "", map[reflect.Type]bool{}), func(k string) bool { return allowed[k] })
	if len(keys) > 0 {
		t.Fatalf("cluster document keys that name a host file or turn a check off: %v", keys)
	}
	// The walk finds what it must: the relay's document has such keys.
	want := []string{".tls.cert_file", ".tls.key_file", ".tls.client_ca_file", ".auth.bearer_tokens_file", ".wal.dir",
		".ship.auth.password_file", ".ship.auth.bearer_token_file", ".ship.tls.ca_file", ".ship.tls.cert_file",
		".ship.tls.key_file", ".ship.tls.insecure_skip_verify", ".credentials.password_file",
		".credentials.bearer_token_file", ".credentials.tls.ca_file", ".credentials.tls.cert_file",
		".credentials.tls.key_file", ".credentials.tls.insecure_skip_verify"}
	if got := pathKeys(reflect.TypeFor[Relay](), "", map[reflect.Type]bool{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("path keys of the relay document = %v\nwant %v", got, want)
	}
}

// A host may pin a credential to the upstream hosts it belongs to: a
// cluster config that names it for another upstream does not get it sent
// there.
func TestCredentialHosts(t *testing.T) {
	c := mustParseCluster(t, `
upstreams:
  - {name: vm-a, url: "https://vm.example.com:8427/api/v1/write", capacity: 1MiB/s}
  - {name: vm-b, url: "http://10.0.0.2:8428/x", capacity: 1MiB/s}
  - {name: evil, url: "https://evil.example.net/x", capacity: 1MiB/s}
agents: {ship: {credential: vm}}
`)
	local := DefaultAgent()
	local.ConfigFile = "/etc/procfleet/agent.yaml"
	cred := Credential{ShipAuth: ShipAuth{BearerTokenFile: "/etc/procfleet/vm.token"}, Hosts: []string{"VM.example.com:8427", "10.0.0.2"}}
	local.Credentials = map[string]Credential{"vm": cred}
	a, err := c.AgentConfig("h1", nil, local)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]UpstreamCredential{
		"https://vm.example.com:8427/api/v1/write": {Upstream: "vm-a", Name: "vm", Credential: cred},
		"http://10.0.0.2:8428/x":                   {Upstream: "vm-b", Name: "vm", Credential: cred},
		"https://evil.example.net/x": {Upstream: "evil", Name: "vm", Problem: `upstream evil: credential "vm" may not be sent to ` +
			`evil.example.net, which is not in its hosts [VM.example.com:8427 10.0.0.2] (credentials: in /etc/procfleet/agent.yaml); not sending there`},
	}
	if !reflect.DeepEqual(a.Ship.Credentials, want) {
		t.Fatalf("ship.credentials = %+v\nwant %+v", a.Ship.Credentials, want)
	}
	for _, bad := range []string{"http://vm", "vm/x", "", ":8427"} {
		c := Credential{Hosts: []string{bad}}
		if err := c.Validate("credentials.vm"); err == nil || !strings.Contains(err.Error(), "credentials.vm.hosts[0]") {
			t.Fatalf("hosts [%q]: Validate = %v; want an error naming credentials.vm.hosts[0]", bad, err)
		}
	}
}
