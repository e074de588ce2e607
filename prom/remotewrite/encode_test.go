package remotewrite

import (
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// encSeries is a decoded series for the tests: labels as name=value in
// order, samples as value@ts.
type encSeries struct {
	Labels  string
	Samples []string
}

// encDecode decodes a compressed request of either version with protowire
// alone, strictly: any field the encoder does not write fails the test.
func encDecode(t *testing.T, body []byte, version int) []encSeries {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	var out []encSeries
	var symbols []string
	encFields(t, raw, func(num protowire.Number, b []byte) {
		switch {
		case version == 1 && num == 1:
			out = append(out, encDecodeSeries(t, b, nil))
		case version == 2 && num == 4:
			symbols = append(symbols, string(b))
		case version == 2 && num == 5:
			if len(symbols) == 0 || symbols[0] != "" {
				t.Fatalf("symbols %q do not start with the empty string", symbols)
			}
			out = append(out, encDecodeSeries(t, b, symbols))
		default:
			t.Fatalf("unexpected field %d in version %d request", num, version)
		}
	})
	return out
}

func encFields(t *testing.T, b []byte, f func(protowire.Number, []byte)) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			t.Fatalf("bad tag (type %d)", typ)
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			t.Fatalf("bad length")
		}
		f(num, v)
		b = b[n+m:]
	}
}

func encDecodeSeries(t *testing.T, b []byte, symbols []string) encSeries {
	t.Helper()
	var s encSeries
	var names []string
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		v, m := protowire.ConsumeBytes(b[n:])
		b = b[n+m:]
		switch num {
		case 1:
			if symbols == nil {
				var name, value string
				encFields(t, v, func(num protowire.Number, x []byte) {
					if num == 1 {
						name = string(x)
					} else {
						value = string(x)
					}
				})
				names = append(names, name+"="+value)
				continue
			}
			var refs []uint64
			for len(v) > 0 {
				r, k := protowire.ConsumeVarint(v)
				refs = append(refs, r)
				v = v[k:]
			}
			for i := 0; i+1 < len(refs); i += 2 {
				names = append(names, symbols[refs[i]]+"="+symbols[refs[i+1]])
			}
		case 2:
			var val float64
			var ts int64
			for len(v) > 0 {
				num, typ, k := protowire.ConsumeTag(v)
				v = v[k:]
				if num == 1 && typ == protowire.Fixed64Type {
					x, k := protowire.ConsumeFixed64(v)
					val, v = math.Float64frombits(x), v[k:]
				} else {
					x, k := protowire.ConsumeVarint(v)
					ts, v = int64(x), v[k:]
				}
			}
			s.Samples = append(s.Samples, fmt.Sprintf("%g@%d", val, ts))
		default:
			t.Fatalf("unexpected series field %d", num)
		}
	}
	s.Labels = strings.Join(names, ",")
	return s
}

func TestEncode(t *testing.T) {
	text := `# HELP x y
# TYPE a gauge
b{z="1",a="2"} 1 1700000000000

a 2.5 1700000000000
b{a="2",z="1"} 3 1699999999000
b{a="2",z="1"} 4 1700000001000
c{esc="q\"\\\nn"} -Inf 1700000000000
d{empty=""} NaN 1700000000
e 0 0
f{instance="orig"} 7
`
	want := []encSeries{
		{"__name__=b,a=2,instance=h1,job=j,z=1", []string{"3@1699999999000", "1@1700000000000", "4@1700000001000"}},
		{"__name__=a,instance=h1,job=j", []string{"2.5@1700000000000"}},
		{"__name__=c,esc=q\"\\\nn,instance=h1,job=j", []string{"-Inf@1700000000000"}},
		{"__name__=d,instance=h1,job=j", []string{"NaN@1700000000000"}},
		{"__name__=e,instance=h1,job=j", []string{"0@42"}},
		{"__name__=f,instance=h1,job=j", []string{"7@42"}},
	}
	for _, v := range []int{1, 2} {
		var e Encoder
		for range 3 { // the same series again: interned, same answer
			body, st, err := e.Encode([]byte("prefix"), []byte(text), EncodeOptions{
				Version: v, ExtraLabels: []string{"job=x", "instance=h1", "job=j"}, DefaultTimestamp: 42})
			if err != nil {
				t.Fatal(err)
			}
			if string(body[:6]) != "prefix" {
				t.Fatalf("dst not appended to")
			}
			got := encDecode(t, body[6:], v)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("v%d:\n got %q\nwant %q", v, got, want)
			}
			if st.Series != 6 || st.Samples != 8 {
				t.Fatalf("stats %+v", st)
			}
		}
	}
}

func TestEncodeV2Symbols(t *testing.T) {
	var e Encoder
	raw, _, err := e.Marshal(nil, []byte("m{a=\"m\"} 1 1000000000000\nm{a=\"n\"} 2 1000000000000\n"), EncodeOptions{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	var symbols []string
	encFields(t, raw, func(num protowire.Number, b []byte) {
		if num == 4 {
			symbols = append(symbols, string(b))
		}
	})
	// Each string once, in order of first use: names and values share it.
	if want := []string{"", "__name__", "m", "a", "n"}; !reflect.DeepEqual(symbols, want) {
		t.Fatalf("symbols %q, want %q", symbols, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	f := func(text string, o EncodeOptions, want string) {
		t.Helper()
		var e Encoder
		dst, _, err := e.Encode([]byte("x"), []byte(text), o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Encode(%q) error %v, want %q", text, err, want)
		}
		if string(dst) != "x" {
			t.Fatalf("dst changed on error: %q", dst)
		}
	}
	f("ok 1\n{a=\"b\"} 1\n", EncodeOptions{}, "line 2: want a metric name")
	f("m{a=\"b} 1\n", EncodeOptions{}, "line 1: label value not closed")
	f("m{a=\"b\",a=\"c\"} 1\n", EncodeOptions{}, "line 1: label a given twice")
	f("m{__name__=\"x\"} 1\n", EncodeOptions{}, "__name__ in braces")
	f("m{1a=\"x\"} 1\n", EncodeOptions{}, "want a label name")
	f("m{a \"x\"} 1\n", EncodeOptions{}, "want '=' after label a")
	f("m{a=x} 1\n", EncodeOptions{}, "want a quoted value")
	f("m{a=\"x\"\n", EncodeOptions{}, "not closed with '}'")
	f("m\n", EncodeOptions{}, "want a value")
	f("m abc\n", EncodeOptions{}, `value "abc" is not a number`)
	f("m 1 x\n", EncodeOptions{}, `timestamp "x" is not accepted`)
	f("m 1 2 3\n", EncodeOptions{}, "after the timestamp")
	f("m 1\n", EncodeOptions{Version: 3}, "version 3 is not accepted")
	f("m 1\n", EncodeOptions{ExtraLabels: []string{"__name__=x"}}, `extra label "__name__=x"`)
	f("m 1\n", EncodeOptions{ExtraLabels: []string{"novalue"}}, `extra label "novalue"`)
}

func TestEncParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{
		"1700000000000": 1700000000000,
		"1700000000":    1700000000000, // seconds, as VictoriaMetrics reads them
		"1700000000.5":  1700000000500,
		"-5":            -5000,
		"2147483648":    2147483648,
		"1.7e12":        1700000000000,
	} {
		got, err := encParseTimestamp([]byte(in))
		if err != nil || got != want {
			t.Errorf("encParseTimestamp(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"NaN", "Inf", "1e30", ""} {
		if _, err := encParseTimestamp([]byte(in)); err == nil {
			t.Errorf("encParseTimestamp(%q) took it", in)
		}
	}
}

func TestSetEncodeHeaders(t *testing.T) {
	for v, want := range map[int][3]string{
		1: {"snappy", "application/x-protobuf", "0.1.0"},
		2: {"snappy", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "2.0.0"},
	} {
		h := http.Header{}
		SetEncodeHeaders(h, v)
		got := [3]string{h.Get("Content-Encoding"), h.Get("Content-Type"), h.Get("X-Prometheus-Remote-Write-Version")}
		if got != want {
			t.Errorf("version %d: headers %q, want %q", v, got, want)
		}
	}
}

// The series an Encoder remembers are those of its extra labels: other
// extra labels make other series, also for a series text seen before.
func TestEncodeExtraLabelsChange(t *testing.T) {
	var e Encoder
	for _, c := range []struct {
		extra []string
		want  string
	}{
		{[]string{"instance=a"}, "__name__=m,instance=a,k=v"},
		{[]string{"instance=b"}, "__name__=m,instance=b,k=v"},
		{nil, "__name__=m,k=v"},
		{[]string{"instance=a"}, "__name__=m,instance=a,k=v"},
		{[]string{"k=w"}, "__name__=m,k=w"},
	} {
		body, _, err := e.Encode(nil, []byte("m{k=\"v\"} 1 1700000000000\nm {k=\"v\"} 2 1700000001000\n"), EncodeOptions{ExtraLabels: c.extra})
		if err != nil {
			t.Fatal(err)
		}
		got := encDecode(t, body, 1)
		if len(got) != 1 || got[0].Labels != c.want || len(got[0].Samples) != 2 {
			t.Fatalf("extra %q: %q; want one series %s with 2 samples", c.extra, got, c.want)
		}
	}
}

func TestEncodeErrorsLabels(t *testing.T) {
	for text, want := range map[string]string{
		"m{b=\"\" b=\"0\"} 1\n":      "line 1: want ',' or '}' after the value of label b",
		"m{b=\"\",b=\"0\"} 1\n":      "line 1: label b given twice",
		"m{job=\"a\",job=\"b\"} 1\n": "line 1: label job given twice", // even where an extra label replaces it
	} {
		var e Encoder
		if _, _, err := e.Encode(nil, []byte(text), EncodeOptions{ExtraLabels: []string{"job=x"}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Encode(%q) error %v; want %q", text, err, want)
		}
	}
}
