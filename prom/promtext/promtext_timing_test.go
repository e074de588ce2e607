package promtext

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/procfleet/procfleet/internal/testenv"
)

// benchBody returns about size bytes of what procfleet agents and
// node_exporter send: HELP and TYPE comments, then series with a few
// labels, a value and a millisecond timestamp.
func benchBody(size int) []byte {
	var b bytes.Buffer
	modes := []string{"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"}
	ts := int64(1700000000000)
	for i := 0; b.Len() < size; i++ {
		cpu := i % 64
		if cpu == 0 {
			b.WriteString("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n")
			b.WriteString("# TYPE node_cpu_seconds_total counter\n")
		}
		for _, mode := range modes {
			fmt.Fprintf(&b, "node_cpu_seconds_total{cpu=\"%d\",mode=\"%s\",instance=\"h%d\"} %d.%02d %d\n",
				cpu, mode, i/64, 12345+i*7, i%100, ts)
		}
		fmt.Fprintf(&b, "node_network_receive_bytes_total{device=\"eth%d\"} %g %d\n", cpu, float64(i)*1.5e9, ts)
		fmt.Fprintf(&b, "node_memory_MemAvailable_bytes %d %d\n", 1<<34-i*4096, ts)
	}
	return b.Bytes()
}

// BenchmarkCheck checks a 1 MiB body from memory: the checker's own cost.
func BenchmarkCheck(b *testing.B) {
	body := benchBody(1 << 20)
	lim := DefaultLimits()
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if _, err := Check(r, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckGzip checks the same body gzip-compressed, as agents send
// it; bytes are counted after decompression.
func BenchmarkCheckGzip(b *testing.B) {
	body := benchBody(1 << 20)
	compressed := testenv.Gzip(b, string(body))
	lim := DefaultLimits()
	r := bytes.NewReader(compressed)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(compressed)
		if _, err := CheckGzip(r, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGzipOnly is the floor under BenchmarkCheckGzip: decompression
// alone, through the limit.
func BenchmarkGzipOnly(b *testing.B) {
	body := benchBody(1 << 20)
	compressed := testenv.Gzip(b, string(body))
	r := bytes.NewReader(compressed)
	z := NewGzipReader(r, 32<<20)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(compressed)
		z.Reset(r, 32<<20)
		for {
			if _, err := z.Read(buf); err != nil {
				break
			}
		}
	}
}
