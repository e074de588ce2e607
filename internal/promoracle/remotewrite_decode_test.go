package promoracle

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/procfleet/procfleet/prom/promtext"
	"github.com/procfleet/procfleet/prom/remotewrite"
)

// rwPoint is one float sample of a series, as Prometheus reads it.
type rwPoint struct {
	series string // labels.Labels.String(), empty values left out
	v      float64
	t      int64
}

var rwValues = []string{"", "a", "node-1:9100", `C:\temp`, `say "hi"`, "two\nlines", "ünïcödé ✓", "tab\there", "{},=", "#"}

// rwRandom returns random series as Prometheus' remote write 1.0 types,
// with the samples, histograms and exemplars a receiver should see.
func rwRandom(rng *rand.Rand) (ts []prompb.TimeSeries, want []rwPoint, histograms, exemplars int) {
	for i := range 1 + rng.IntN(20) {
		b := labels.NewScratchBuilder(4)
		b.Add("__name__", []string{"up", "node_cpu_seconds_total", "a:b_c", "x"}[rng.IntN(4)])
		b.Add("series", string(rune('a'+i)))
		for _, n := range []string{"job", "instance", "path", "zz"} {
			if rng.IntN(2) == 0 {
				b.Add(n, rwValues[rng.IntN(len(rwValues))])
			}
		}
		b.Sort()
		ls := b.Labels()
		var pl []prompb.Label
		ls.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		if rng.IntN(4) == 0 { // unsorted, as vmagent sends by default
			rng.Shuffle(len(pl), func(i, j int) { pl[i], pl[j] = pl[j], pl[i] })
		}
		key := labels.NewBuilder(ls)
		ls.Range(func(l labels.Label) {
			if l.Value == "" {
				key.Del(l.Name)
			}
		})
		s := prompb.TimeSeries{Labels: pl}
		t0 := int64(1<<31) + rng.Int64N(1<<42)
		for k := range rng.IntN(6) {
			v := []float64{rng.Float64(), float64(rng.IntN(1000)), -rng.NormFloat64() * 1e12, math.Inf(1), math.Inf(-1), math.NaN(),
				math.Float64frombits(0x7ff0000000000002), math.Copysign(0, -1), 5e-324, math.MaxFloat64, 1e15, 123456789012345.6}[rng.IntN(12)]
			s.Samples = append(s.Samples, prompb.Sample{Value: v, Timestamp: t0 + int64(k)*15000})
			want = append(want, rwPoint{key.Labels().String(), v, t0 + int64(k)*15000})
		}
		if rng.IntN(5) == 0 {
			s.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: t0}}
			exemplars++
		}
		if rng.IntN(5) == 0 {
			s.Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 1, Timestamp: t0}}
			histograms++
		}
		ts = append(ts, s)
	}
	return ts, want, histograms, exemplars
}

// rwV2 converts 1.0 series to a 2.0 request with Prometheus' symbol table.
func rwV2(ts []prompb.TimeSeries, rng *rand.Rand) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, s := range ts {
		var refs []uint32
		for _, l := range s.Labels {
			refs = append(refs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		out := writev2.TimeSeries{LabelsRefs: refs, Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("help text")}}
		for _, x := range s.Samples {
			out.Samples = append(out.Samples, writev2.Sample{Value: x.Value, Timestamp: x.Timestamp, StartTimestamp: rng.Int64N(2)})
		}
		for range s.Exemplars {
			out.Exemplars = append(out.Exemplars, writev2.Exemplar{LabelsRefs: []uint32{st.Symbolize("trace_id"), st.Symbolize("abc")}, Value: 1, Timestamp: 1 << 40})
		}
		for range s.Histograms {
			out.Histograms = append(out.Histograms, writev2.Histogram{Count: &writev2.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Timestamp: 1 << 40})
		}
		req.Timeseries = append(req.Timeseries, out)
	}
	req.Symbols = st.Symbols()
	return req
}

// rwCheck decodes msg with procfleet's decoder and reads its lines back
// with Prometheus' text parser: the same series, values and timestamps
// as Prometheus' types held, in order.
func rwCheck(t *testing.T, msg []byte, version int, want []rwPoint, histograms, exemplars, series int) {
	t.Helper()
	d, err := remotewrite.NewDecoder(promtext.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	res, err := d.Decode(msg, version, func(p []byte) error { out = append(out, p...); return nil })
	if err != nil {
		t.Fatalf("v%d: %v", version, err)
	}
	if res.Samples != len(want) || res.Histograms != histograms || res.Exemplars != exemplars || res.Series != series {
		t.Fatalf("v%d: result %+v; want %d samples, %d histograms, %d exemplars, %d series", version, res, len(want), histograms, exemplars, series)
	}
	p := textparse.NewPromParser(out, labels.NewSymbolTable(), false)
	var got []rwPoint
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("v%d: Prometheus cannot parse the output: %v\n%s", version, err, out)
		}
		if e != textparse.EntrySeries {
			continue
		}
		var ls labels.Labels
		p.Labels(&ls)
		_, ts, v := p.Series()
		if ts == nil {
			t.Fatalf("v%d: a line without a timestamp", version)
		}
		got = append(got, rwPoint{ls.String(), v, *ts})
	}
	if len(got) != len(want) {
		t.Fatalf("v%d: %d samples; want %d", version, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.v == w.v || math.IsNaN(g.v) && math.IsNaN(w.v) // -0 reads back as 0 in Prometheus' parser
		if g.series != w.series || g.t != w.t || !same {
			t.Fatalf("v%d: sample %d is %s %v %d; want %s %v %d", version, i, g.series, g.v, g.t, w.series, w.v, w.t)
		}
	}
}

func rwRoundTrip(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 14))
	ts, want, h, e := rwRandom(rng)
	msg, err := (&prompb.WriteRequest{Timeseries: ts, Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Help: "x"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rwCheck(t, msg, 1, want, h, e, len(ts))
	msg, err = rwV2(ts, rng).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rwCheck(t, msg, 2, want, h, e, len(ts))
}

// Requests Prometheus' own types encode decode to the same series,
// values and timestamps, read back by Prometheus' text parser.
func TestRemoteWriteDecodeMatchesPrompb(t *testing.T) {
	for seed := range uint64(300) {
		rwRoundTrip(t, seed)
	}
}

func FuzzRemoteWriteDecodeMatchesPrompb(f *testing.F) {
	f.Add(uint64(1))
	f.Fuzz(rwRoundTrip)
}
