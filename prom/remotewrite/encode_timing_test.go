package remotewrite

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// encBenchBatch is four scans of the generators over procfs' fixture
// tree, as the agent writes them (testdata/scan.txt).
func encBenchBatch(b *testing.B) ([]byte, int) {
	b.Helper()
	text, err := os.ReadFile("testdata/scan.txt")
	if err != nil {
		b.Fatal(err)
	}
	return text, bytes.Count(text, []byte("\n"))
}

// BenchmarkEncode measures, on the same batch, the CPU and the wire bytes
// per sample of the import body (gzip at the agent's default level 5)
// against remote write 1.0 and 2.0 (parse, protobuf, snappy), with the
// agent's two extra labels. Figures in docs/design/scraping.md ("Remote
// write: sending").
func BenchmarkEncode(b *testing.B) {
	text, samples := encBenchBatch(b)
	extra := []string{"instance=host-1.example.org", "job=procfleet"}
	b.Run("import-gzip", func(b *testing.B) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, 5)
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		cpu := encCPU()
		for b.Loop() {
			buf.Reset()
			zw.Reset(&buf)
			_, _ = zw.Write(text)
			_ = zw.Close()
		}
		encReport(b, samples, buf.Len(), cpu)
	})
	for _, v := range []int{1, 2} {
		b.Run("remote-write-"+string(rune('0'+v)), func(b *testing.B) {
			var e Encoder
			var out []byte
			o := EncodeOptions{Version: v, ExtraLabels: extra}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			cpu := encCPU()
			for b.Loop() {
				var err error
				if out, _, err = e.Encode(out[:0], text, o); err != nil {
					b.Fatal(err)
				}
			}
			encReport(b, samples, len(out), cpu)
		})
	}
}

// encReport reports the CPU time (user and system, of the process, since
// start) and the wire bytes per sample: on a shared machine the CPU time
// is the fairer figure, ns/op counts the waits for a core too.
func encReport(b *testing.B, samples, wire int, start time.Duration) {
	b.ReportMetric(float64((encCPU()-start).Nanoseconds())/float64(b.N)/float64(samples), "cpu-ns/sample")
	b.ReportMetric(float64(wire)/float64(samples), "wire-B/sample")
}

// encCPU returns the CPU time the process used so far.
func encCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
