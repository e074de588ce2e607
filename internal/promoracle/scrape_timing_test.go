package promoracle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// exporterBody is prom/promtext's benchmark body: about n series as
// node_exporter writes them.
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

// benchTextparse runs Prometheus' text parser over prom/promtext's
// BenchmarkScrapeSplice body; with labels it builds each sample's label
// set, as its scrape loop does for a series it has not cached.
func benchTextparse(b *testing.B, withLabels bool) {
	body := exporterBody(10000)
	st := plabels.NewSymbolTable()
	var ls plabels.Labels
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p := textparse.NewPromParser(body, st, false)
		for {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if e == textparse.EntrySeries {
				p.Series()
				if withLabels {
					p.Labels(&ls)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/sample")
}

// BenchmarkPrometheusTextparse is the parser alone, as for cached series.
func BenchmarkPrometheusTextparse(b *testing.B) { benchTextparse(b, false) }

// BenchmarkPrometheusTextparseLabels builds every sample's labels, as for
// new series (and every series of a scrape with relabeling in Prometheus'
// first scrape).
func BenchmarkPrometheusTextparseLabels(b *testing.B) { benchTextparse(b, true) }
