package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// job wraps scrape_configs YAML into a valid cluster document.
func job(s string) string { return strings.TrimPrefix(twoUpstreams, "\n") + "scrape_configs:\n" + s }

func TestScrapeExampleJobs(t *testing.T) {
	c, err := LoadClusterFile(filepath.Join("..", "deploy", "cluster.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ScrapeConfigs) != 2 {
		t.Fatalf("scrape_configs = %d jobs; want the two examples", len(c.ScrapeConfigs))
	}
	pg, local := c.ScrapeConfigs[0], c.ScrapeConfigs[1]
	if pg.JobName != "postgres" || pg.ScrapeInterval.D() != 30*time.Second || pg.Scheme != "https" ||
		pg.BasicAuth.Credential != "pg-scrape" || pg.TLSConfig.Credential != "pg-scrape" ||
		pg.BodySizeLimit != 10<<20 || pg.Members["zone"] != "eu-1" || len(pg.RelabelConfigs) != 2 ||
		pg.RelabelConfigs[1].Action != RelabelHashMod || pg.RelabelConfigs[1].Regex != DefaultRelabelRegex ||
		!reflect.DeepEqual(pg.Params, map[string][]string{"collect[]": {"database"}}) {
		t.Fatalf("postgres job = %+v", pg)
	}
	want := DefaultScrapeConfig()
	want.JobName, want.ScrapeInterval, want.Placement = "node-local", PromDuration(15*time.Second), PlacementLocal
	want.StaticConfigs = []StaticConfig{{Targets: []string{"127.0.0.1:9100"}}}
	if !reflect.DeepEqual(local, want) {
		t.Fatalf("node-local job =\n %+v\nwant\n %+v", local, want)
	}
}

// Every key of the scrape schema is documented in the reference file
// (some commented out, as the alternatives they are).
func TestScrapeExampleCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "cluster.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data[strings.Index(string(data), "\nscrape_configs:"):])
	var walk func(t reflect.Type, path string, seen map[reflect.Type]bool) []string
	walk = func(typ reflect.Type, path string, seen map[reflect.Type]bool) []string {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return nil
		}
		seen[typ] = true
		var missing []string
		for k, ft := range yamlFields(typ, nil) {
			if !strings.Contains(doc, " "+k+":") && !strings.Contains(doc, "{"+k+":") {
				missing = append(missing, path+"."+k)
			}
			missing = append(missing, walk(ft, path+"."+k, seen)...)
		}
		return missing
	}
	if m := walk(reflect.TypeFor[ScrapeConfig](), "scrape_configs[]", map[reflect.Type]bool{}); len(m) > 0 {
		t.Fatalf("keys missing from deploy/cluster.example.yaml: %v", m)
	}
}

func TestScrapeDefaults(t *testing.T) {
	f := func(doc string, want func(*ScrapeConfig)) {
		t.Helper()
		c := mustParseCluster(t, job(doc))
		w := DefaultScrapeConfig()
		w.JobName = "j"
		want(&w)
		if !reflect.DeepEqual(c.ScrapeConfigs[0], w) {
			t.Fatalf("%s:\n got %+v\nwant %+v", doc, c.ScrapeConfigs[0], w)
		}
	}
	f("  - job_name: j\n", func(*ScrapeConfig) {})
	f("  - {job_name: j, scrape_interval: 0}\n", func(*ScrapeConfig) {}) // 0 is the default, as in Prometheus
	// The timeout's default is capped at a shorter interval.
	f("  - {job_name: j, scrape_interval: 5s}\n", func(c *ScrapeConfig) {
		c.ScrapeInterval, c.ScrapeTimeout = PromDuration(5*time.Second), PromDuration(5*time.Second)
	})
	f("  - {job_name: j, scrape_interval: 1h30m, scrape_timeout: 1m}\n", func(c *ScrapeConfig) {
		c.ScrapeInterval, c.ScrapeTimeout = PromDuration(90*time.Minute), PromDuration(time.Minute)
	})
	f("  - {job_name: j, scrape_interval: 1d, honor_timestamps: false, honor_labels: true}\n", func(c *ScrapeConfig) {
		c.ScrapeInterval, c.HonorTimestamps, c.HonorLabels = PromDuration(24*time.Hour), false, true
	})
	f("  - {job_name: j, dns_sd_configs: [{names: [a.example.com], type: aaaa, port: 9100}], file_sd_configs: [{files: [a.json]}], http_sd_configs: [{url: 'http://sd/x'}]}\n",
		func(c *ScrapeConfig) {
			c.DNSSDConfigs = []DNSSDConfig{{Names: []string{"a.example.com"}, Type: DNSAAAA, Port: 9100, RefreshInterval: PromDuration(30 * time.Second)}}
			c.FileSDConfigs = []FileSDConfig{{Files: []string{"a.json"}, RefreshInterval: PromDuration(5 * time.Minute)}}
			c.HTTPSDConfigs = []HTTPSDConfig{{URL: "http://sd/x", RefreshInterval: PromDuration(time.Minute)}}
		})
	// Relabeling rules get Prometheus' defaults, each key on its own; an
	// action is case-insensitive.
	f("  - job_name: j\n    relabel_configs:\n      - {source_labels: [a], target_label: b}\n      - {action: LabelDrop, regex: tmp_.*}\n      - {source_labels: [a], separator: '', regex: '', replacement: '', target_label: c}\n",
		func(c *ScrapeConfig) {
			c.RelabelConfigs = []RelabelConfig{
				{SourceLabels: []string{"a"}, Separator: ";", TargetLabel: "b", Regex: "(.*)", Replacement: "$1", Action: "replace"},
				{Separator: ";", Regex: "tmp_.*", Replacement: "$1", Action: "labeldrop"},
				{SourceLabels: []string{"a"}, TargetLabel: "c", Action: "replace"},
			}
		})
}

func TestParseScrapeErrors(t *testing.T) {
	f := func(jobs, want string) {
		t.Helper()
		_, err := ParseCluster([]byte(job(jobs)))
		if err == nil {
			t.Fatalf("accepted; want an error containing %q:\n%s", want, jobs)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q:\n%s", err, want, jobs)
		}
	}
	// Lines: the document has 3 lines of upstreams and scrape_configs: on line 4.
	// Unknown keys, with path and line, at every level.
	f("  - {job_name: j, scrape_intervall: 1m}\n", `scrape_configs[0]: line 5: unknown key scrape_intervall (see deploy/cluster.example.yaml`)
	f("  - job_name: j\n    static_configs:\n      - {targets: ['a:1'], label: {}}\n", `scrape_configs[0].static_configs[0]: line 7: unknown key label`)
	f("  - job_name: j\n  - job_name: k\n    relabel_configs:\n      - {source_labels: [a], target: b}\n", `scrape_configs[1].relabel_configs[0]: line 8: unknown key target`)
	f("  - {job_name: j, dns_sd_configs: [{names: [a], typ: A}]}\n", `scrape_configs[0].dns_sd_configs[0]: line 5: unknown key typ`)
	f("  - {job_name: j, http_sd_configs: [{url: 'http://a/', proxy_url: 'http://p/'}]}\n", `scrape_configs[0].http_sd_configs[0]: line 5: unknown key proxy_url`)
	f("  - {job_name: j, kubernetes_sd_configs: [{role: pod}]}\n", `unknown key kubernetes_sd_configs`)
	f("  - {job_name: j, metric_relabel_configs: [{action: drop, regex: x, target_label: y, extra: 1}]}\n", `scrape_configs[0].metric_relabel_configs[0]: line 5: unknown key extra`)
	f("  - {job_name: j, tls_config: {credential: c, min_versio: TLS12}}\n", `scrape_configs[0].tls_config: line 5: unknown key min_versio`)
	// Through anchors and merge keys too.
	f("  - &base {job_name: j, static_configs: [{targets: ['a:1'], lables: {}}]}\n  - {<<: *base, job_name: k}\n", `scrape_configs[0].static_configs[0]: line 5: unknown key lables`)
	f("  - job_name: j\n    relabel_configs:\n      - {<<: {sourcelabels: [a]}, action: keep}\n", `scrape_configs[0].relabel_configs[0]: line 7: unknown key sourcelabels`)

	// Host-local keys: refused with their path and line and how to name a credential.
	hl := "not accepted in the cluster config: credentials and TLS settings are host-local"
	f("  - job_name: j\n    basic_auth: {username: u, password_file: /etc/passwd}\n", `scrape_configs[0].basic_auth.username: line 6: `+hl)
	f("  - job_name: j\n    basic_auth:\n      password: secret\n", `scrape_configs[0].basic_auth.password: line 7: `+hl)
	f("  - job_name: j\n    basic_auth:\n      credential: c\n      password_file: /etc/shadow\n", `scrape_configs[0].basic_auth.password_file: line 8: `+hl)
	f("  - {job_name: j, authorization: {credentials_file: /root/token}}\n", `scrape_configs[0].authorization.credentials_file: line 5: `+hl)
	f("  - {job_name: j, authorization: {credentials: tok}}\n", `authorization.credentials: line 5: `+hl)
	for _, k := range []string{"ca_file: /x", "cert_file: /x", "key_file: /x", "insecure_skip_verify: true", "server_name: x", "ca: PEM"} {
		f("  - {job_name: j, tls_config: {"+k+"}}\n", `scrape_configs[0].tls_config.`+strings.Split(k, ":")[0]+`: line 5: `+hl)
	}
	f("  - {job_name: j, bearer_token_file: /root/t}\n", `scrape_configs[0].bearer_token_file: line 5: `+hl)
	f("  - {job_name: j, credential: c}\n", `scrape_configs[0].credential: line 5: `+hl)
	f("  - {job_name: j, http_sd_configs: [{url: 'http://a/', tls_config: {insecure_skip_verify: true}}]}\n", `scrape_configs[0].http_sd_configs[0].tls_config.insecure_skip_verify: line 5: `+hl)
	f("  - {job_name: j, tls_config: &t {credential: c}}\n  - {job_name: k, tls_config: {<<: *t, key_file: /k}}\n", `scrape_configs[1].tls_config.key_file: line 6: `+hl)
	f("  - job_name: j\n    basic_auth: {credential: c}\n    authorization: {credential: d}\n", `scrape_configs[0]: basic_auth and authorization are both set`)
	f("  - {job_name: j, authorization: {type: basic, credential: d}}\n", `scrape_configs[0].authorization.type: Basic is not accepted; use basic_auth`)
	f("  - {job_name: j, basic_auth: {credential: 'Pg Scrape'}}\n", `scrape_configs[0].basic_auth.credential: "Pg Scrape" is not accepted`)
	f("  - {job_name: j, tls_config: {}}\n", `scrape_configs[0].tls_config.credential: "" is not accepted`)

	// Unsupported values, with path and line.
	f("  - job_name: j\n    relabel_configs:\n      - {action: keep_if_equal, source_labels: [a], target_label: b}\n",
		`scrape_configs[0].relabel_configs[0].action: line 7: "keep_if_equal" is not a relabeling action procfleet supports; want one of replace, lowercase, uppercase, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep`)
	f("  - {job_name: j, dns_sd_configs: [{names: [a.example.com], type: MX, port: 25}]}\n", `scrape_configs[0].dns_sd_configs[0].type: line 5: "MX" is not accepted; want one of SRV, A, AAAA`)
	f("  - {job_name: j, placement: everywhere}\n", `scrape_configs[0].placement: line 5: "everywhere" is not accepted; want one of cluster, local`)
	f("  - {job_name: j, scheme: ftp}\n", `scrape_configs[0].scheme: line 5: "ftp" is not accepted; want one of http, https`)
	f("  - {job_name: j, scrape_interval: 1.5m}\n", `line 5: "1.5m" is not a duration`)
	f("  - {job_name: j, scrape_interval: 1m1h}\n", `line 5: "1m1h" is not a duration`)
	f("  - {job_name: j, body_size_limit: 10}\n", `line 5: "10" is not a size`)
	f("  - {job_name: j, sample_limit: many}\n", `line 5: cannot unmarshal`)

	// Semantic checks, by path.
	f("  - {job_name: j}\n  - {job_name: j}\n", `scrape_configs[1].job_name: "j" is also the job_name of scrape_configs[0]; want unique names`)
	f("  - {job_name: 'a/b'}\n", `scrape_configs[0].job_name: "a/b" is not accepted`)
	f("  - {scrape_interval: 1m}\n", `scrape_configs[0].job_name: "" is not accepted`)
	f("  - {job_name: j, scrape_interval: 15s, scrape_timeout: 20s}\n", `scrape_configs[0].scrape_timeout: 20s is not accepted; want a positive duration at most scrape_interval (15s)`)
	f("  - {job_name: j, metrics_path: metrics}\n", `scrape_configs[0].metrics_path: "metrics" is not accepted`)
	f("  - {job_name: j, sample_limit: -1}\n", `scrape_configs[0].sample_limit: -1 is not accepted`)
	f("  - {job_name: j, label_limit: -1}\n", `scrape_configs[0].label_limit: -1 is not accepted`)
	f("  - {job_name: j, members: {zone: ''}}\n", `scrape_configs[0].members: zone: value "" is not accepted`)
	f("  - {job_name: j, members: {'bad key': x}}\n", `scrape_configs[0].members: key "bad key" is not accepted`)
	f("  - {job_name: j, static_configs: [{targets: []}]}\n", `scrape_configs[0].static_configs[0].targets: empty`)
	for _, tg := range []string{"db-1", "db-1:0", "db-1:65536", ":9100", "http://db-1:9100", "db 1:9100", "db-1:x", "::1:9100"} {
		f("  - {job_name: j, static_configs: [{targets: ['"+tg+"']}]}\n", `scrape_configs[0].static_configs[0].targets[0]: "`+tg+`" is not accepted; want host:port`)
	}
	f("  - {job_name: j, static_configs: [{targets: ['a:1'], labels: {'a-b': x}}]}\n", `scrape_configs[0].static_configs[0].labels: "a-b" is not a label name`)
	// YAML cannot carry invalid UTF-8; a document built in Go can.
	bad := DefaultScrapeConfig()
	bad.JobName, bad.StaticConfigs = "j", []StaticConfig{{Targets: []string{"a:1"}, Labels: map[string]string{"a": "\xff"}}}
	if err := (ScrapeConfigs{bad}).Validate("scrape_configs"); err == nil || !strings.Contains(err.Error(), "scrape_configs[0].static_configs[0].labels.a: the value is not valid UTF-8") {
		t.Errorf("invalid UTF-8 label value: %v", err)
	}
	f("  - {job_name: j, dns_sd_configs: [{names: []}]}\n", `scrape_configs[0].dns_sd_configs[0].names: empty`)
	f("  - {job_name: j, dns_sd_configs: [{names: ['a b']}]}\n", `scrape_configs[0].dns_sd_configs[0].names[0]: "a b" is not a DNS name`)
	f("  - {job_name: j, dns_sd_configs: [{names: [a.example.com], type: A}]}\n", `scrape_configs[0].dns_sd_configs[0].port: 0 is not accepted; A records need the targets' port`)
	f("  - {job_name: j, dns_sd_configs: [{names: [a.example.com], refresh_interval: 0}]}\n", `scrape_configs[0].dns_sd_configs[0].refresh_interval: 0s is not accepted`)
	f("  - {job_name: j, http_sd_configs: [{url: 'file:///etc/passwd'}]}\n", `scrape_configs[0].http_sd_configs[0].url: "file:///etc/passwd" is not accepted`)
	f("  - {job_name: j, file_sd_configs: [{files: []}]}\n", `scrape_configs[0].file_sd_configs[0].files: empty`)

	// Relabeling rules, as Prometheus validates them (legacy names).
	r := func(rule, want string) {
		t.Helper()
		f("  - job_name: j\n    relabel_configs:\n      - "+rule+"\n", "scrape_configs[0].relabel_configs[0]"+want)
	}
	r("{action: hashmod, source_labels: [a], target_label: b}", `.modulus: missing; hashmod needs a positive modulus`)
	r("{source_labels: [a]}", `.target_label: missing; replace needs a target_label`)
	r("{action: lowercase, source_labels: [a]}", `.target_label: missing; lowercase needs a target_label`)
	r("{action: keepequal, source_labels: [a]}", `.target_label: missing; keepequal needs a target_label`)
	r("{source_labels: [a], target_label: 1b}", `.target_label: "1b" is not accepted for replace`)
	r("{source_labels: [a], target_label: 'a.b'}", `.target_label: "a.b" is not accepted for replace`)
	r("{source_labels: [a], target_label: '${1'}", `.target_label: "${1" is not accepted for replace`)
	r("{action: uppercase, source_labels: [a], target_label: '$1'}", `.target_label: "$1" is not accepted for uppercase`)
	r("{action: uppercase, source_labels: [a], target_label: b, replacement: x}", `.replacement: not accepted for uppercase`)
	r("{action: labelmap, regex: 'a(.*)', replacement: 'b-$1'}", `.replacement: "b-$1" is not accepted for labelmap`)
	r("{action: dropequal, source_labels: [a], target_label: b, regex: x}", `: dropequal takes only source_labels and target_label`)
	r("{action: labelkeep, regex: x, source_labels: [a]}", `: labelkeep takes only regex`)
	r("{action: labeldrop, regex: x, target_label: b}", `: labeldrop takes only regex`)
	r("{source_labels: [a], target_label: b, regex: '(a'}", `.regex: "(a" does not compile`)
	r("{source_labels: ['a.b'], target_label: b}", `.source_labels[0]: "a.b" is not a label name`)
}

func TestParseScrapeAccepts(t *testing.T) {
	for _, jobs := range []string{
		"  - {job_name: j, static_configs: [{targets: ['[::1]:9100', 'db-1.example.com:9187', '10.0.0.1:1']}]}\n",
		"  - {job_name: 'a.b-c_d:1', scrape_interval: 2w, scrape_timeout: 1d}\n",
		"  - {job_name: j, dns_sd_configs: [{names: [_node._tcp.example.com.], type: srv}]}\n",
		"  - {job_name: j, authorization: {credential: tok}, tls_config: {credential: ca}}\n",
		"  - {job_name: j, authorization: {type: Token, credential: tok}}\n",
		"  - {job_name: j, body_size_limit: 1.5GiB, sample_limit: 1, label_limit: 1}\n",
		"  - job_name: j\n    relabel_configs:\n      - {action: keepequal, source_labels: [a], target_label: b}\n      - {action: labelmap, regex: '__meta_(.+)'}\n      - {source_labels: [a], target_label: '${1}_x', regex: '(.+)'}\n",
	} {
		if _, err := ParseCluster([]byte(job(jobs))); err != nil {
			t.Errorf("%s: %v", jobs, err)
		}
	}
}

func TestFileSDNamesStayInTheDirectory(t *testing.T) {
	for _, name := range []string{"/etc/passwd.json", "../x.json", "a/../../x.yaml", "./a.json", "a//b.json", `a\b.json`, "a.txt", "*/a.json", "."} {
		err := validateFileSDName(name)
		if err == nil {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"a.json", "db/*.yaml", "db/prod-*.YML", "x/y/z.yml"} {
		if err := validateFileSDName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if got := FileSDPath(DefaultFileSDDir, "db/*.yaml"); got != "/etc/procfleet/file_sd/db/*.yaml" {
		t.Fatalf("FileSDPath = %q", got)
	}
	_, err := ParseCluster([]byte(job("  - {job_name: j, file_sd_configs: [{files: [/etc/shadow.json]}]}\n")))
	if err == nil || !strings.Contains(err.Error(), `scrape_configs[0].file_sd_configs[0].files[0]: "/etc/shadow.json" is not accepted: the cluster config names files relative to each host's file_sd directory (/etc/procfleet/file_sd)`) {
		t.Fatalf("ParseCluster = %v", err)
	}
}

func TestPromDuration(t *testing.T) {
	ok := map[string]time.Duration{
		"0": 0, "0s": 0, "1m": time.Minute, "30s": 30 * time.Second, "1h30m": 90 * time.Minute,
		"1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1y": 365 * 24 * time.Hour, "500ms": 500 * time.Millisecond,
		"1y2w3d4h5m6s7ms": (365+14+3)*24*time.Hour + 4*time.Hour + 5*time.Minute + 6*time.Second + 7*time.Millisecond,
		"0001s":           time.Second,
	}
	for s, want := range ok {
		if got, err := ParsePromDuration(s); err != nil || got != want {
			t.Errorf("ParsePromDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1", "1.5m", "-1s", "1m1h", "1s1s", "1 s", "1us", "1ns", "1M", "s", "1sms", "300y", "99999999999999999999s"} {
		if got, err := ParsePromDuration(s); err == nil {
			t.Errorf("ParsePromDuration(%q) = %v; want an error", s, got)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Minute: "1h30m", 90 * 24 * time.Hour: "90d",
		14 * 24 * time.Hour: "2w", 1500 * time.Millisecond: "1s500ms", 366 * 24 * time.Hour: "366d", 365 * 24 * time.Hour: "1y"} {
		if got := FormatPromDuration(d); got != want {
			t.Errorf("FormatPromDuration(%v) = %q; want %q", d, got, want)
		}
	}
}

func TestPromByteSize(t *testing.T) {
	ok := map[string]int64{"0": 0, "10MB": 10 << 20, "10MiB": 10 << 20, "1KB": 1024, "512B": 512, "1.5GiB": 3 << 29, ".5KB": 512, "1.KB": 1024, "1EB": 1 << 60}
	for s, want := range ok {
		if got, err := ParsePromByteSize(s); err != nil || got != want {
			t.Errorf("ParsePromByteSize(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "10", "10kB", "10 MB", "-1MB", "1MB1KB", "MB", ".MB", "1..5MB", "1iB", "16EB"} {
		if got, err := ParsePromByteSize(s); err == nil {
			t.Errorf("ParsePromByteSize(%q) = %v; want an error", s, got)
		}
	}
	for b, want := range map[PromByteSize]string{0: "0", 10 << 20: "10MiB", 1536: "1536B", 3 << 29: "1536MiB", 7: "7B"} {
		if got := b.String(); got != want {
			t.Errorf("PromByteSize(%d) = %q; want %q", int64(b), got, want)
		}
	}
}

func TestScrapeAuthResolve(t *testing.T) {
	creds := map[string]Credential{
		"pg":    {ShipAuth: ShipAuth{Username: "u", PasswordFile: "/etc/procfleet/pg.pw"}, TLS: ShipTLS{CAFile: "/etc/procfleet/ca.pem"}, Hosts: []string{"db-1.example.com"}},
		"tok":   {ShipAuth: ShipAuth{BearerTokenFile: "/etc/procfleet/tok"}},
		"onlyt": {TLS: ShipTLS{ServerName: "x"}},
	}
	src := "credentials: in /etc/procfleet/agent.yaml"
	got, err := ScrapeAuth{BasicAuth: &BasicAuthRef{"pg"}, TLSConfig: &TLSRef{"pg"}}.Resolve(creds, src)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "u" || got.PasswordFile != "/etc/procfleet/pg.pw" || got.TLS.CAFile != "/etc/procfleet/ca.pem" || got.TokenFile != "" {
		t.Fatalf("Resolve = %+v", got)
	}
	if !got.Allows("db-1.example.com:9187") || got.Allows("evil.example.com:9187") {
		t.Fatalf("Allows: pinned to db-1.example.com: %+v", got.Hosts)
	}
	got, err = ScrapeAuth{Authorization: &AuthorizationRef{Credential: "tok"}}.Resolve(creds, src)
	if err != nil || got.AuthType != "Bearer" || got.TokenFile != "/etc/procfleet/tok" || !got.Allows("anywhere:1") {
		t.Fatalf("Resolve = %+v, %v", got, err)
	}
	for _, c := range []struct {
		a    ScrapeAuth
		want string
	}{
		{ScrapeAuth{BasicAuth: &BasicAuthRef{"nope"}}, `basic_auth: credential "nope" is not defined in this host's credentials (credentials: in /etc/procfleet/agent.yaml)`},
		{ScrapeAuth{BasicAuth: &BasicAuthRef{"tok"}}, `basic_auth: credential "tok" sets no username and password_file`},
		{ScrapeAuth{Authorization: &AuthorizationRef{Credential: "pg"}}, `authorization: credential "pg" sets no bearer_token_file`},
		{ScrapeAuth{TLSConfig: &TLSRef{"nope"}}, `tls_config: credential "nope" is not defined`},
	} {
		if _, err := c.a.Resolve(creds, src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve(%+v) = %v; want %q", c.a, err, c.want)
		}
	}
	if _, err := (ScrapeAuth{}).Resolve(nil, src); err != nil {
		t.Fatal(err)
	}
}

func TestScrapeSelectsMember(t *testing.T) {
	c := ScrapeConfig{Members: map[string]string{"zone": "eu-1"}}
	if !c.SelectsMember(map[string]string{"zone": "eu-1", "role": "db"}) || c.SelectsMember(map[string]string{"zone": "eu-2"}) || c.SelectsMember(nil) {
		t.Fatal("members: {zone: eu-1}")
	}
	if !(ScrapeConfig{}).SelectsMember(nil) {
		t.Fatal("no members selects every member")
	}
}

func TestParseRelabelConfigs(t *testing.T) {
	got, err := ParseRelabelConfigs([]byte("- {source_labels: [a, b], target_label: c}\n- {action: Drop, regex: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RelabelConfig{
		{SourceLabels: []string{"a", "b"}, Separator: ";", TargetLabel: "c", Regex: "(.*)", Replacement: "$1", Action: "replace"},
		{Separator: ";", Regex: "x", Replacement: "$1", Action: "drop"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseRelabelConfigs([]byte("- {action: drop, regex: x, sep: y}\n")); err == nil || !strings.Contains(err.Error(), "relabel_configs[0]: line 1: unknown key sep") {
		t.Fatalf("ParseRelabelConfigs = %v", err)
	}
}
