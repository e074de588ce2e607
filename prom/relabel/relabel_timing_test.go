package relabel

import (
	"testing"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// A typical target relabeling: five rules of the common kinds on a
// discovered target of ten labels.
const benchRules = `
- {source_labels: [__meta_dns_name], regex: "([^.]+)\\..*", target_label: host}
- {action: labelmap, regex: "__meta_env_(.+)"}
- {action: keep, source_labels: [job], regex: "node|postgres"}
- {action: hashmod, source_labels: [__address__], modulus: 8, target_label: __tmp_shard}
- {action: labeldrop, regex: "tmp_.*"}
`

func benchLabels() labels.Labels {
	return labels.FromStrings(
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
}

func BenchmarkProcess(b *testing.B) {
	cfgs, err := config.ParseRelabelConfigs([]byte(benchRules))
	if err != nil {
		b.Fatal(err)
	}
	rules, err := Compile(cfgs)
	if err != nil {
		b.Fatal(err)
	}
	in := benchLabels()
	bl := labels.NewBuilder(nil)
	var dst labels.Labels
	var keep bool
	b.ReportAllocs()
	for b.Loop() {
		if dst, keep = rules.Apply(bl, in, dst); !keep {
			b.Fatal("dropped")
		}
	}
	if len(dst) != 12 {
		b.Fatalf("result %v", dst)
	}
}

// The scrape path: a sample's labels merged with its target's (no clash)
// and no metric relabeling.
func BenchmarkMergeTarget(b *testing.B) {
	scraped := labels.FromStrings("__name__", "pg_stat_database_tup_fetched", "datname", "app", "server", "db-1:5432")
	target := labels.FromStrings("instance", "db-1:9187", "job", "postgres", "zone", "eu-1")
	bl := labels.NewBuilder(nil)
	var dst labels.Labels
	b.ReportAllocs()
	for b.Loop() {
		bl.Reset(scraped)
		MergeTarget(bl, target, false)
		dst = bl.Labels(dst)
	}
	if len(dst) != 6 {
		b.Fatalf("result %v", dst)
	}
}
