package promoracle

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/prompb"

	"github.com/procfleet/procfleet/prom/remotewrite"
)

// BenchmarkRemoteWriteEncode compares, on the batch of the encoder's own
// benchmark (prom/remotewrite/testdata/scan.txt), procfleet's encoder with
// what a sender built on Prometheus' library does: read the lines with
// its text parser, build prompb structs (a TimeSeries per series, a Label
// and a Sample per line), Marshal and snappy.Encode. Both add the
// agent's instance and job labels.
func BenchmarkRemoteWriteEncode(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("..", "..", "prom", "remotewrite", "testdata", "scan.txt"))
	if err != nil {
		b.Fatal(err)
	}
	samples := bytes.Count(text, []byte("\n"))
	// CPU time of the process (user and system) per sample: on a shared
	// machine ns/op counts the waits for a core too.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	report := func(b *testing.B, wire int, start time.Duration) {
		b.ReportMetric(float64((cpu()-start).Nanoseconds())/float64(b.N)/float64(samples), "cpu-ns/sample")
		b.ReportMetric(float64(wire)/float64(samples), "wire-B/sample")
	}
	b.Run("procfleet", func(b *testing.B) {
		var e remotewrite.Encoder
		var out []byte
		o := remotewrite.EncodeOptions{ExtraLabels: []string{"instance=host-1.example.org", "job=procfleet"}}
		b.ReportAllocs()
		start := cpu()
		for b.Loop() {
			if out, _, err = e.Encode(out[:0], text, o); err != nil {
				b.Fatal(err)
			}
		}
		report(b, len(out), start)
	})
	b.Run("prompb", func(b *testing.B) {
		var out []byte
		b.ReportAllocs()
		start := cpu()
		for b.Loop() {
			out = prompbEncode(b, text)
		}
		report(b, len(out), start)
	})
}

// prompbEncode is a remote-write 1.0 sender on Prometheus' library.
func prompbEncode(b *testing.B, text []byte) []byte {
	p := textparse.NewPromParser(text, labels.NewSymbolTable(), false)
	var req prompb.WriteRequest
	index := map[uint64]int{}
	var ls labels.Labels
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if e != textparse.EntrySeries {
			continue
		}
		_, tsp, v := p.Series()
		p.Labels(&ls)
		lb := labels.NewBuilder(ls)
		lb.Set("instance", "host-1.example.org")
		lb.Set("job", "procfleet")
		ls = lb.Labels()
		h := ls.Hash()
		i, ok := index[h]
		if !ok {
			i = len(req.Timeseries)
			index[h] = i
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)})
		}
		req.Timeseries[i].Samples = append(req.Timeseries[i].Samples, prompb.Sample{Value: v, Timestamp: *tsp})
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}
