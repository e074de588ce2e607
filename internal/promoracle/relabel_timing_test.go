package promoracle

import (
	"testing"

	plabels "github.com/prometheus/prometheus/model/labels"
	prelabel "github.com/prometheus/prometheus/model/relabel"
)

// Prometheus' model/relabel on prom/relabel's BenchmarkProcess: the same
// five rules on the same ten labels, for comparison.
func BenchmarkPrometheusProcess(b *testing.B) {
	cfgs, err := promParse(`
- {source_labels: [__meta_dns_name], regex: "([^.]+)\\..*", target_label: host}
- {action: labelmap, regex: "__meta_env_(.+)"}
- {action: keep, source_labels: [job], regex: "node|postgres"}
- {action: hashmod, source_labels: [__address__], modulus: 8, target_label: __tmp_shard}
- {action: labeldrop, regex: "tmp_.*"}
`)
	if err != nil {
		b.Fatal(err)
	}
	in := plabels.FromStrings(
		"__address__", "db-1.eu-1.example.com:9187",
		"__meta_dns_name", "db-1.eu-1.example.com",
		"__meta_env_zone", "eu-1",
		"__meta_env_rack", "r12",
		"__metrics_path__", "/metrics",
		"__scheme__", "http",
		"__scrape_interval__", "30s",
		"job", "postgres",
		"tmp_a", "1",
		"tmp_b", "2",
	)
	lb := plabels.NewBuilder(plabels.EmptyLabels())
	var out plabels.Labels
	b.ReportAllocs()
	for b.Loop() {
		lb.Reset(in)
		if !prelabel.ProcessBuilder(lb, cfgs...) {
			b.Fatal("dropped")
		}
		out = lb.Labels()
	}
	if out.Len() != 12 {
		b.Fatalf("result %v", out)
	}
}
