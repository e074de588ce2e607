package discovery

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/prom/labels"
)

// benchGroups returns n targets in groups of 1000, each group with three
// labels, as file or HTTP SD gives them.
func benchGroups(n int) []Group {
	var gs []Group
	for i := 0; i < n; i += 1000 {
		addrs := make([]string, 0, 1000)
		for k := i; k < min(n, i+1000); k++ {
			addrs = append(addrs, fmt.Sprintf("host-%06d.example.com:9100", k))
		}
		env := []string{"prod", "staging", "dev"}[i/1000%3]
		gs = append(gs, addressGroup(addrs, labels.FromStrings("__meta_filepath", "/etc/procfleet/file_sd/a.json", "env", env, "tmp_owner", "team-a")))
	}
	return gs
}

const benchJob = `
- job_name: node
  params: {"collect[]": [cpu]}
  static_configs: [{targets: ["x:1"]}]
  relabel_configs:
    - source_labels: [__address__]
      regex: '(.*):\d+'
      target_label: host
    - source_labels: [env]
      regex: prod|staging
      action: keep
    - regex: tmp_.*
      action: labeldrop
`

// Resolving 100,000 targets with three relabeling rules (a third are
// dropped), sorted and each once.
func BenchmarkResolve100k(b *testing.B) {
	job := parseJob(b, benchJob)
	gs := benchGroups(100_000)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, _, err := Resolve(job, gs)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/target")
	if n != 67_000 {
		b.Fatalf("%d targets kept", n)
	}
}

// Parsing an HTTP SD body of 100,000 targets, one group each with two
// labels: the largest body a job takes by default.
func BenchmarkParseJSON100k(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i := range 100_000 {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, `{"targets": ["host-%06d.example.com:9100"], "labels": {"env": "prod", "rack": "r%d"}}`, i, i%40)
	}
	buf.WriteString("]")
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		gs, err := parseJSON(bytes.NewReader(body), testMeta, newBudget(DefaultConfig()))
		if err != nil || len(gs) != 100_000 {
			b.Fatal(len(gs), err)
		}
	}
}

// Parsing a YAML file_sd file of 100,000 targets in one group.
func BenchmarkParseYAML100k(b *testing.B) {
	data := []byte("- labels: {env: prod}\n  targets:\n" + strings.Repeat("  - host-000001.example.com:9100\n", 100_000))
	c := DefaultConfig()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseYAML(data, c.MaxYAMLNodes, testMeta, newBudget(c)); err != nil {
			b.Fatal(err)
		}
	}
}

// A job of 100,000 static targets with three relabeling rules, from Run
// to its first set (config checked once, before).
func BenchmarkJobStatic100k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("- job_name: node\n  static_configs:\n")
	for g := range 100 {
		fmt.Fprintf(&sb, "    - labels: {env: %s, tmp_owner: team-a}\n      targets:\n", []string{"prod", "staging", "dev"}[g%3])
		for k := range 1000 {
			fmt.Fprintf(&sb, "        - host-%06d.example.com:9100\n", g*1000+k)
		}
	}
	sb.WriteString(benchJob[strings.Index(benchJob, "  relabel_configs:"):])
	job := parseJob(b, sb.String())
	b.ReportAllocs()
	for b.Loop() {
		j, err := New(job, Deps{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		ts := <-j.Updates()
		cancel()
		<-done
		if len(ts.Labels) != 67_000 {
			b.Fatalf("%d targets", len(ts.Labels))
		}
	}
}
