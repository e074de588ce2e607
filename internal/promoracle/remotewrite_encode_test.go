package promoracle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/procfleet/procfleet/prom/remotewrite"
)

// rwSeries is a series as the oracle sees it: Prometheus' labels and the
// samples, values compared by their bits.
type rwSeries struct {
	labels  labels.Labels
	samples []prompb.Sample
}

// decodeRW decodes our compressed request with Prometheus' own snappy
// and prompb decoders, 1.0 or 2.0, into series in request order.
func decodeRW(t testing.TB, body []byte, version int) []rwSeries {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("Prometheus' snappy: %v", err)
	}
	var out []rwSeries
	var b labels.ScratchBuilder
	if version == 1 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("prompb.WriteRequest: %v", err)
		}
		for _, ts := range req.Timeseries {
			out = append(out, rwSeries{ts.ToLabels(&b, nil), ts.Samples})
		}
		return out
	}
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		t.Fatalf("writev2.Request: %v", err)
	}
	if len(req.Symbols) == 0 || req.Symbols[0] != "" {
		t.Fatalf("symbols %q do not start with the empty string", req.Symbols)
	}
	for _, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&b, req.Symbols)
		if err != nil {
			t.Fatalf("writev2 labels: %v", err)
		}
		var ss []prompb.Sample
		for _, s := range ts.Samples {
			ss = append(ss, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
		}
		out = append(out, rwSeries{ls, ss})
	}
	return out
}

// rwLine is one generated line and the sample it means.
type rwLine struct {
	name   string
	labels [][2]string
	value  float64
	ts     int64 // 0: no timestamp written
}

var (
	rwNames     = []string{"m", "node_cpu_seconds_total", "a:b", "_x", "Up"}
	rwLNames    = []string{"a", "b", "instance", "job", "Z", "_c", "mode"}
	rwEncValues = []string{"", "1", "x y", `q"uote`, `back\slash`, "new\nline", "ÄbC", "{}", "a=b,c"}
	rwFloats    = []float64{0, 1, -1.5, 1e300, -1e-300, math.Inf(1), math.Inf(-1), math.NaN(), 42, 0.1}
)

func randomLines(r *rand.Rand, n int) []rwLine {
	out := make([]rwLine, n)
	for i := range out {
		l := rwLine{name: rwNames[r.IntN(len(rwNames))], value: rwFloats[r.IntN(len(rwFloats))]}
		for _, j := range r.Perm(len(rwLNames))[:r.IntN(4)] {
			l.labels = append(l.labels, [2]string{rwLNames[j], rwEncValues[r.IntN(len(rwEncValues))]})
		}
		if r.IntN(5) > 0 {
			l.ts = 1700000000000 + int64(r.IntN(10))*1000
		}
		out[i] = l
	}
	return out
}

func escapeValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func renderLines(lines []rwLine) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.name)
		if len(l.labels) > 0 {
			b.WriteByte('{')
			for i, kv := range l.labels {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=\"%s\"", kv[0], escapeValue(kv[1]))
			}
			b.WriteByte('}')
		}
		b.WriteString(" " + strconv.FormatFloat(l.value, 'g', -1, 64))
		if l.ts != 0 {
			b.WriteString(" " + strconv.FormatInt(l.ts, 10))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// meant returns the series the lines mean, built with Prometheus' labels
// package: the extra labels replace those of the same name, empty values
// are no labels, series in order of first line, samples in time order.
func meant(lines []rwLine, extra map[string]string, def int64) []rwSeries {
	var out []rwSeries
	index := map[string]int{}
	for _, l := range lines {
		m := map[string]string{"__name__": l.name}
		for _, kv := range l.labels {
			m[kv[0]] = kv[1]
		}
		for k, v := range extra {
			m[k] = v
		}
		for k, v := range m {
			if v == "" {
				delete(m, k) // an empty value is no label
			}
		}
		ls := labels.FromMap(m)
		ts := l.ts
		if ts == 0 {
			ts = def
		}
		i, ok := index[ls.String()]
		if !ok {
			i = len(out)
			index[ls.String()] = i
			out = append(out, rwSeries{labels: ls})
		}
		out[i].samples = append(out[i].samples, prompb.Sample{Value: l.value, Timestamp: ts})
	}
	for i := range out {
		slices.SortStableFunc(out[i].samples, func(a, b prompb.Sample) int { return int(a.Timestamp - b.Timestamp) })
	}
	return out
}

func sameSeries(t *testing.T, what string, got, want []rwSeries) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d series, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !labels.Equal(g.labels, w.labels) || len(g.samples) != len(w.samples) {
			t.Fatalf("%s: series %d: %s with %d samples, want %s with %d", what, i, g.labels, len(g.samples), w.labels, len(w.samples))
		}
		for j := range g.samples {
			if g.samples[j].Timestamp != w.samples[j].Timestamp ||
				math.Float64bits(g.samples[j].Value) != math.Float64bits(w.samples[j].Value) &&
					!(math.IsNaN(g.samples[j].Value) && math.IsNaN(w.samples[j].Value)) {
				t.Fatalf("%s: series %s sample %d: %v, want %v", what, g.labels, j, g.samples[j], w.samples[j])
			}
		}
	}
}

// Random lines, encoded by procfleet and decoded by Prometheus' prompb
// (1.0) and write/v2 (2.0) decoders, are the series they mean; and the
// 1.0 bytes are those that Prometheus' own prompb encoder makes of them.
func TestRemoteWriteEncoderAgainstPrompb(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	var enc remotewrite.Encoder // one for all: what it remembers must not leak
	for round := range 300 {
		lines := randomLines(r, 1+r.IntN(40))
		extra := map[string]string{}
		var extraArgs []string
		if r.IntN(2) == 0 {
			extra["instance"] = fmt.Sprintf("host-%d", r.IntN(3))
			extra["job"] = "procfleet"
			extraArgs = []string{"instance=" + extra["instance"], "job=procfleet"}
		}
		def := int64(1600000000000 + round)
		want := meant(lines, extra, def)
		text := renderLines(lines)
		for _, v := range []int{1, 2} {
			body, st, err := enc.Encode(nil, text, remotewrite.EncodeOptions{Version: v, ExtraLabels: extraArgs, DefaultTimestamp: def})
			if err != nil {
				t.Fatalf("round %d: %v\n%s", round, err, text)
			}
			if st.Samples != len(lines) || st.Series != len(want) {
				t.Fatalf("round %d: stats %+v; want %d samples, %d series", round, st, len(lines), len(want))
			}
			sameSeries(t, fmt.Sprintf("round %d v%d", round, v), decodeRW(t, body, v), want)
		}
		// Prometheus' encoder leaves -0 out as 0; the lines have none.
		req := prompb.WriteRequest{}
		for _, s := range want {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(s.labels, nil), Samples: s.samples})
		}
		theirs, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ours, _, err := enc.Marshal(nil, text, remotewrite.EncodeOptions{ExtraLabels: extraArgs, DefaultTimestamp: def})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("round %d: 1.0 bytes differ from prompb's\nours   %x\ntheirs %x", round, ours, theirs)
		}
	}
}

// FuzzRemoteWriteEncoder feeds arbitrary text to the encoder. What it
// takes must decode with Prometheus' decoders to the same series in 1.0
// and 2.0, with labels sorted, unique and not empty, and samples in time
// order; and where Prometheus' text parser reads the same text with
// timestamps in milliseconds, to its series and values.
func FuzzRemoteWriteEncoder(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		f.Add(renderLines(randomLines(r, 1+r.IntN(8))))
	}
	f.Add([]byte("a{b=\"c\\d\"} 1\n# comment\n\n  m  { x = \"1\" , } -Inf 1700000000.5\r\n"))
	f.Add([]byte("m{a=\"\"} NaN 0\nm 1 -5\nm 2 2147483648\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		var enc remotewrite.Encoder
		o := remotewrite.EncodeOptions{ExtraLabels: []string{"job=j"}, DefaultTimestamp: 1600000000000}
		b1, st, err := enc.Encode(nil, text, o)
		if err != nil {
			return
		}
		o.Version = 2
		b2, st2, err := enc.Encode(nil, text, o)
		if err != nil || st2 != (remotewrite.EncodeStats{Series: st.Series, Samples: st.Samples, Raw: st2.Raw}) {
			t.Fatalf("2.0: %v, stats %+v vs %+v", err, st2, st)
		}
		s1, s2 := decodeRW(t, b1, 1), decodeRW(t, b2, 2)
		sameSeries(t, "1.0 vs 2.0", s2, s1)
		n := 0
		for _, s := range s1 {
			if s.labels.Get("job") != "j" || s.labels.Get("__name__") == "" {
				t.Fatalf("series %s lacks job or name", s.labels)
			}
			prev := ""
			s.labels.Range(func(l labels.Label) {
				if l.Name <= prev || l.Value == "" {
					t.Fatalf("labels %s not sorted, unique and set", s.labels)
				}
				prev = l.Name
			})
			for i := 1; i < len(s.samples); i++ {
				if s.samples[i].Timestamp < s.samples[i-1].Timestamp {
					t.Fatalf("series %s samples out of order", s.labels)
				}
			}
			n += len(s.samples)
		}
		if n != st.Samples {
			t.Fatalf("%d samples decoded, %d encoded", n, st.Samples)
		}
		compareTextparse(t, text, s1)
	})
}

// compareTextparse checks got, the series the encoder made of text with
// job=j, against Prometheus' text parser, when that parser reads all of
// text and every timestamp is one that both read as milliseconds.
func compareTextparse(t *testing.T, text []byte, got []rwSeries) {
	t.Helper()
	for l := range bytes.Lines(text) {
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			return // Prometheus takes blanks before a name into it
		}
	}
	p := textparse.NewPromParser(text, labels.NewSymbolTable(), false)
	var want []rwSeries
	index := map[string]int{}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
		if e != textparse.EntrySeries {
			continue
		}
		_, tsp, v := p.Series()
		ts := int64(1600000000000)
		if tsp != nil {
			if *tsp >= -(1<<31) && *tsp < 1<<31 {
				return // seconds to VictoriaMetrics' grammar, milliseconds to Prometheus'
			}
			ts = *tsp
		}
		var ls labels.Labels
		p.Labels(&ls)
		b := labels.NewBuilder(ls)
		ls.Range(func(l labels.Label) {
			if l.Value == "" {
				b.Del(l.Name) // an empty value is no label
			}
		})
		b.Set("job", "j")
		ls = b.Labels()
		i, ok := index[ls.String()]
		if !ok {
			i = len(want)
			index[ls.String()] = i
			want = append(want, rwSeries{labels: ls})
		}
		want[i].samples = append(want[i].samples, prompb.Sample{Value: v, Timestamp: ts})
	}
	for i := range want {
		slices.SortStableFunc(want[i].samples, func(a, b prompb.Sample) int { return int(a.Timestamp - b.Timestamp) })
	}
	sameSeries(t, "against Prometheus' text parser", got, want)
}
