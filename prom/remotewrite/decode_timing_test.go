package remotewrite

import (
	"fmt"
	"testing"
	"time"

	"github.com/procfleet/procfleet/prom/promtext"
)

// BenchmarkDecode measures decompressing and converting a request of 2000
// node_exporter-like series of one sample each; SetBytes is the snappy
// body.
func BenchmarkDecode(b *testing.B) {
	ts := time.Now().UnixMilli()
	series := make([]tSeries, 2000)
	for i := range series {
		series[i] = tSeries{labels: [][2]string{{"__name__", "node_cpu_seconds_total"}, {"cpu", fmt.Sprint(i % 64)}, {"mode", "idle"}, {"i", fmt.Sprint(i)}},
			samples: []tSample{{float64(1000000+i*37) + float64(i%100)/100, ts}}}
	}
	for _, v := range []int{1, 2} {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			msg := encodeV1(series)
			if v == 2 {
				msg = encodeV2(series)
			}
			body := compress(msg)
			d, _ := NewDecoder(promtext.DefaultLimits())
			buf := make([]byte, len(msg))
			emit := func([]byte) error { return nil }
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				m, err := Decompress(buf, body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Decode(m, v, emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*float64(len(series))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
