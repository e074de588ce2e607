package promtext

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// exporterBody returns a body of about n series as node_exporter writes
// them: families with HELP and TYPE, a few labels, no timestamps.
func exporterBody(n int) []byte {
	var b bytes.Buffer
	modes := []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	series := 0
	for cpu := 0; series < n; cpu++ {
		if cpu%32 == 0 {
			b.WriteString("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n")
		}
		for _, mode := range modes {
			fmt.Fprintf(&b, "node_cpu_seconds_total{cpu=\"%d\",mode=\"%s\"} %d.%02d\n", cpu, mode, 12345+cpu*7, cpu%100)
		}
		fmt.Fprintf(&b, "node_network_receive_bytes_total{device=\"eth%d\"} %g\n", cpu, float64(cpu)*1.5e9)
		fmt.Fprintf(&b, "node_filesystem_avail_bytes{device=\"/dev/sda%d\",fstype=\"ext4\",mountpoint=\"/srv/%d\"} %d\n", cpu, cpu, 1<<34-cpu*4096)
		series += len(modes) + 2
	}
	return b.Bytes()
}

// benchScrape parses a 10,000-series body per op; ns/op divided by 10,000
// is the cost of a sample. cold parses each body with a new parser, as a
// target's first scrape, which builds every relabeled label set.
func benchScrape(b *testing.B, rules []config.RelabelConfig, cold bool) {
	body := exporterBody(10000)
	opt := ScrapeOptions{Target: labels.FromStrings("job", "node", "instance", "host-1.example.com:9100"), HonorTimestamps: true}
	if rules != nil {
		r, err := relabel.Compile(rules)
		if err != nil {
			b.Fatal(err)
		}
		opt.Rules = r
	}
	p, err := NewScrapeParser(opt)
	if err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(body)
	var out []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if cold {
			p, _ = NewScrapeParser(opt)
		}
		var st ScrapeStats
		if out, st, err = p.Parse(r, testStamp, out[:0]); err != nil || st.Scraped < 10000 {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/sample")
}

// BenchmarkScrapeSplice is the common case: no metric_relabel_configs.
func BenchmarkScrapeSplice(b *testing.B) { benchScrape(b, nil, false) }

// benchRules are two metric_relabel_configs, as jobs commonly carry:
// drop a family, drop a label.
var benchRules = []config.RelabelConfig{
	rule(config.RelabelDrop, "__name__", "node_scrape_collector_.*", "", ""),
	rule(config.RelabelLabelDrop, "", "fstype", "", ""),
}

// BenchmarkScrapeRelabel applies benchRules on every scrape after the
// first: label sets come from the target's cache.
func BenchmarkScrapeRelabel(b *testing.B) { benchScrape(b, benchRules, false) }

// BenchmarkScrapeRelabelCold applies benchRules on a first scrape: every
// label set is built and relabeled.
func BenchmarkScrapeRelabelCold(b *testing.B) { benchScrape(b, benchRules, true) }
