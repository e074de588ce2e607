package remotewrite

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/procfleet/procfleet/prom/promtext"
)

func decodeAll(t testing.TB, msg []byte, version int) (string, DecodeResult, error) {
	t.Helper()
	d, err := NewDecoder(promtext.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := d.Decode(msg, version, func(p []byte) error {
		if len(p) == 0 || p[len(p)-1] != '\n' {
			t.Errorf("emitted a piece that does not end in a newline: %q", p)
		}
		out.Write(p)
		return nil
	})
	return out.String(), res, err
}

const ms = int64(1_700_000_000_000)

func TestDecode(t *testing.T) {
	series := []tSeries{
		{labels: [][2]string{{"__name__", "up"}, {"job", "node"}, {"instance", "a:9100"}},
			samples: []tSample{{1, ms}, {0, ms + 15000}}},
		{labels: [][2]string{{"job", "x"}, {"__name__", "temp_celsius"}, {"empty", ""}, {"path", "C:\\t \"q\"\nz"}},
			samples:   []tSample{{21.5, ms}, {math.Inf(1), ms + 1}, {math.Inf(-1), ms + 2}, {math.NaN(), ms + 3}, {math.Copysign(0, -1), ms + 4}, {1e300, ms + 5}, {5e-324, ms + 6}, {-12, ms + 7}},
			exemplars: 2},
		{labels: [][2]string{{"__name__", "only_histograms"}}, histograms: 3},
		{labels: [][2]string{{"__name__", "bare"}}, samples: []tSample{{123456789012345, -(1 << 40)}}},
	}
	want := `up{job="node",instance="a:9100"} 1 1700000000000
up{job="node",instance="a:9100"} 0 1700000015000
temp_celsius{job="x",path="C:\\t \"q\"\nz"} 21.5 1700000000000
temp_celsius{job="x",path="C:\\t \"q\"\nz"} +Inf 1700000000001
temp_celsius{job="x",path="C:\\t \"q\"\nz"} -Inf 1700000000002
temp_celsius{job="x",path="C:\\t \"q\"\nz"} NaN 1700000000003
temp_celsius{job="x",path="C:\\t \"q\"\nz"} -0 1700000000004
temp_celsius{job="x",path="C:\\t \"q\"\nz"} 1e+300 1700000000005
temp_celsius{job="x",path="C:\\t \"q\"\nz"} 5e-324 1700000000006
temp_celsius{job="x",path="C:\\t \"q\"\nz"} -12 1700000000007
bare 123456789012345 -1099511627776
`
	wantRes := DecodeResult{Series: 4, Samples: 11, Histograms: 3, Exemplars: 2}
	for _, v := range []int{1, 2} {
		msg := encodeV1(series)
		if v == 2 {
			msg = encodeV2(series)
		}
		got, res, err := decodeAll(t, msg, v)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if got != want {
			t.Errorf("v%d: got\n%s\nwant\n%s", v, got, want)
		}
		if res != wantRes {
			t.Errorf("v%d: result %+v, want %+v", v, res, wantRes)
		}
		// Every line is one the import path's checker takes.
		n, err := promtext.Check(strings.NewReader(got), promtext.DefaultLimits())
		if err != nil || n != res.Samples {
			t.Errorf("v%d: promtext.Check: %d samples, %v; want %d", v, n, err, res.Samples)
		}
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, v := range []int{1, 2} {
		got, res, err := decodeAll(t, nil, v)
		if err != nil || got != "" || res != (DecodeResult{}) {
			t.Errorf("v%d: %q %+v %v", v, got, res, err)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	name := [2]string{"__name__", "m"}
	ok := []tSample{{1, ms}}
	f := func(what string, s tSeries, want string) {
		t.Helper()
		for _, v := range []int{1, 2} {
			msg := encodeV1([]tSeries{{labels: [][2]string{name}, samples: ok}, s})
			if v == 2 {
				msg = encodeV2([]tSeries{{labels: [][2]string{name}, samples: ok}, s})
			}
			_, _, err := decodeAll(t, msg, v)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%s v%d: got %v, want a DecodeError", what, v, err)
				continue
			}
			if de.Series != 1 || !strings.Contains(err.Error(), want) {
				t.Errorf("%s v%d: got %q (series %d), want series 1 and %q", what, v, err, de.Series, want)
			}
		}
	}
	f("no name", tSeries{labels: [][2]string{{"a", "b"}}, samples: ok}, "no __name__ label")
	f("empty name", tSeries{labels: [][2]string{{"__name__", ""}}, samples: ok}, "no __name__ label")
	f("name twice", tSeries{labels: [][2]string{name, name}, samples: ok}, "__name__ given twice")
	f("bad name", tSeries{labels: [][2]string{{"__name__", "a.b"}}, samples: ok}, `metric name "a.b" is not accepted`)
	f("bad label name", tSeries{labels: [][2]string{name, {"a-b", "x"}}, samples: ok}, `(m), at byte`)
	f("bad label name", tSeries{labels: [][2]string{name, {"a-b", "x"}}, samples: ok}, `label 1: name "a-b" is not accepted`)
	f("empty label name", tSeries{labels: [][2]string{name, {"", "x"}}, samples: ok}, `label 1: name "" is not accepted`)
	f("label twice", tSeries{labels: [][2]string{name, {"a", "x"}, {"b", "y"}, {"a", "z"}}, samples: ok}, "label a given twice")
	f("bad utf8", tSeries{labels: [][2]string{name, {"a", "x\xffy"}}, samples: ok}, `label a: value "x\xffy" is not valid UTF-8`)
	f("nul", tSeries{labels: [][2]string{name, {"a", "x\x00"}}, samples: ok}, "holds a NUL byte")
	f("long value", tSeries{labels: [][2]string{name, {"a", strings.Repeat("v", 4097)}}, samples: ok}, "value of 4097 bytes is over the limit of 4096")
	f("long label name", tSeries{labels: [][2]string{name, {strings.Repeat("n", 257), "v"}}, samples: ok}, "name of 257 bytes is over the limit of 256")
	many := [][2]string{name}
	for i := range 33 {
		many = append(many, [2]string{"l" + strings.Repeat("x", i), "v"})
	}
	f("many labels", tSeries{labels: many, samples: ok}, "33 labels beside __name__ are over the limit of 32")
	empty := [][2]string{name}
	for i := range 70 {
		empty = append(empty, [2]string{"l" + strings.Repeat("x", i), ""})
	}
	f("many empty labels", tSeries{labels: empty, samples: ok}, "more than 66 labels, empty ones included")
	f("seconds", tSeries{labels: [][2]string{name}, samples: []tSample{{1, ms}, {1, 1_700_000_000}}}, "sample 1: timestamp 1700000000 ms is before 1970-01-25")
	f("zero time", tSeries{labels: [][2]string{name}, samples: []tSample{{1, 0}}}, "sample 0: timestamp 0 ms")
}

func TestDecodeLineLimit(t *testing.T) {
	lim := promtext.DefaultLimits()
	lim.MaxLineBytes = 45
	d, _ := NewDecoder(lim)
	msg := encodeV1([]tSeries{{labels: [][2]string{{"__name__", "m"}, {"a", strings.Repeat("v", 20)}}, samples: []tSample{{1, ms}, {1.5e-300, ms}}}})
	_, err := d.Decode(msg, 1, func([]byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "sample 1: its line of 50 bytes is over the limit of 45") {
		t.Errorf("got %v", err)
	}
}

func TestDecodeWireFaults(t *testing.T) {
	good := encodeV1([]tSeries{{labels: [][2]string{{"__name__", "m"}}, samples: []tSample{{1, ms}}}})
	f := func(what string, msg []byte, v int, want string) {
		t.Helper()
		_, _, err := decodeAll(t, msg, v)
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a DecodeError with %q", what, err, want)
		}
	}
	f("truncated", good[:len(good)-3], 1, "cannot read field 1")
	f("bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1, "cannot read a field tag")
	f("huge length", append([]byte{0x0a}, protowire.AppendVarint(nil, 1<<40)...), 1, "at byte 0: WriteRequest: cannot read field 1")
	f("timeseries as varint", []byte{0x08, 0x01}, 1, "field 1 (timeseries) has wire type 0; want 2")
	f("sample value as varint", encodeRaw1(appendMsg(nil, 2, []byte{0x08, 0x01})), 1, "field 1 (value) has wire type 0")
	f("v1 body as v2", good, 2, "is this a 1.0 body sent as 2.0?")
	v2 := encodeV2([]tSeries{{labels: [][2]string{{"__name__", "m"}}, samples: []tSample{{1, ms}}}})
	f("ref past symbols", append(appendStr(nil, 4, ""), appendMsg(nil, 5, appendMsg(nil, 1, []byte{0, 7}))...), 2, "at byte 7: labels_refs[1] is 7, past the 1 symbols")
	f("odd refs", append(appendStr(nil, 4, ""), appendMsg(nil, 5, appendMsg(nil, 1, []byte{0}))...), 2, "labels_refs has 1 entries")
	f("v2 truncated", v2[:len(v2)-1], 2, "cannot read field 5")
}

// encodeRaw1 wraps one TimeSeries body, __name__="m" first, in a
// WriteRequest.
func encodeRaw1(rest []byte) []byte {
	ts := appendMsg(nil, 1, appendStr(appendStr(nil, 1, "__name__"), 2, "m"))
	return appendMsg(nil, 1, append(ts, rest...))
}

func TestDecodeUnpackedRefsAndFieldOrder(t *testing.T) {
	// Symbols after the timeseries, labels_refs unpacked, an unknown
	// field: all valid protobuf.
	var ts []byte
	for _, r := range []uint64{1, 2, 3, 4} {
		ts = protowire.AppendVarint(protowire.AppendTag(ts, 1, protowire.VarintType), r)
	}
	ts = appendMsg(ts, 2, encSample(tSample{7, ms}))
	ts = appendMsg(ts, 5, []byte{0x08, 0x02}) // metadata
	msg := appendMsg(nil, 5, ts)
	msg = protowire.AppendVarint(protowire.AppendTag(msg, 99, protowire.VarintType), 1)
	for _, s := range []string{"", "__name__", "m", "job", "j"} {
		msg = appendStr(msg, 4, s)
	}
	got, _, err := decodeAll(t, msg, 2)
	if err != nil || got != "m{job=\"j\"} 7 1700000000000\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestDecodedLen(t *testing.T) {
	lim := promtext.DefaultLimits()
	lim.MaxBytes = 1000
	body := compress(bytes.Repeat([]byte("a"), 1000))
	if n, err := DecodedLen(body, lim); err != nil || n != 1000 {
		t.Errorf("got %d, %v", n, err)
	}
	if _, err := DecodedLen(compress(make([]byte, 1001)), lim); !errors.Is(err, ErrDecodedTooLarge) {
		t.Errorf("1001 bytes: got %v, want ErrDecodedTooLarge", err)
	}
	// A header that claims 900 bytes from 3: refused before anything is
	// made for it.
	lie := append(protowire.AppendVarint(nil, 900), 0, 0)
	if _, err := DecodedLen(lie, lim); !errors.Is(err, ErrSnappy) || !strings.Contains(err.Error(), "more than a snappy block holds") {
		t.Errorf("lying header: got %v", err)
	}
	if _, err := DecodedLen([]byte{0xff}, lim); !errors.Is(err, ErrSnappy) {
		t.Errorf("bad header: got %v", err)
	}
	bad := append([]byte(nil), body...)
	bad[len(bad)-1] ^= 0xff
	bad = append(bad, 0xff, 0xff)
	if _, err := Decompress(make([]byte, 1000), bad); !errors.Is(err, ErrSnappy) {
		t.Errorf("corrupt block: got %v", err)
	}
}

func TestDecodeEmitError(t *testing.T) {
	d, _ := NewDecoder(promtext.DefaultLimits())
	stop := errors.New("stop")
	msg := encodeV1([]tSeries{{labels: [][2]string{{"__name__", "m"}}, samples: []tSample{{1, ms}}}})
	if _, err := d.Decode(msg, 1, func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("got %v, want the emit error", err)
	}
	if _, err := d.Decode(msg, 3, func([]byte) error { return nil }); err == nil {
		t.Error("version 3 taken")
	}
}
