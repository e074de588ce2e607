package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// registrationValues are member values as versions write them, and odd
// ones: fields missing, null, of the wrong type, of another case, twice,
// unknown; and values that are not JSON objects.
var registrationValues = []string{
	`{"address":"10.0.0.1:7946","http":"10.0.0.1:9477","version":"v1","labels":{"zone":"a"},"start_time":"2026-01-02T03:04:05.123456789Z","kind":"agent"}`,
	`{"address":"10.0.0.1:7946","version":"v1","labels":{},"start_time":"2026-01-02T03:04:05+02:00","kind":"relay"}`,
	`{"address":"","version":"","labels":null,"start_time":"0001-01-01T00:00:00Z","kind":""}`,
	`{"address":"a:1"}`, `{}`, `null`, `{"labels":{"a":null}}`, `{"labels":{"a":"1","a":"2"}}`,
	`{"ADDRESS":"a:1","Labels":{"x":"y"},"START_TIME":"2026-01-02T03:04:05Z","address":"b:2"}`,
	`{"address":"a:1","future":{"x":[1,2,{"y":null}]},"kind":"agent"}`,
	`{"address":"\u00e9\ud800x","labels":{"\u0000":"\n"}}`, "{\"address\":\"\xff\"}",
	`{"version":1}`, `{"version":true}`, `{"version":null}`, `{"version":{}}`, `{"http":[]}`, `{"kind":2}`,
	`{"kind":"nonsense"}`, `{"address":5}`, `{"labels":{"a":1}}`, `{"labels":[]}`, `{"labels":"a"}`,
	`{"start_time":"yesterday"}`, `{"start_time":5}`, `{"start_time":null}`,
	`{"labels":{"b":"2","a":"1"},"LABELS":{"a":"3","c":null},"labels":{"b":"4"}}`, `{"labels":{"a":"1"},"labels":null}`,
	`{"labels":null,"labels":{}}`, `{"labels":{"a":"1","a":"2","a":"0"}}`, `{"address":"a:1","address":null}`,
	`{"\u0061ddress":"a:1"}`, `{"ADDRESS":"a:1","addreſs":"b:2","\u212Aind":"agent"}`, `{"address":"a\ud800\u0041\udc00\ud83d\ude00"}`,
	`{"labels":{"\u00e9":"\t\"\\\/\b\f\n\r"}}`, "{\"labels\":{\"\xc3\":\"\xed\xa0\x80\"}}",
	`{"x":[1,-2.5e+3,0.0,1E-2,true,false,null,{"a":[{}]},[]],"y":"z"}`, `{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":.5}`,
	`{"x":tru}`, `{"x":nulll}`, `{"x":"\x"}`, `{"x":"\u12"}`, "{\"x\":\"\t\"}", `{"x" 1}`, `{"x":1 "y":2}`, `{,}`,
	`{"start_time":"2026-01-02T03:04:05Z","start_time":null}`, `{"start_time":{}}`, `{"start_time":"2026-01-02T03:04:05"}`,
	`{"a":"\ud800\0"}`, `{"a":"\ud800\"}`, `{"a":"\ud800\u00"}`, `{"a":"\udc00\ud800\udc00"}`,
	`{"address":"a:1",}`, `{"address":"a:1"`, `[]`, `5`, `"x"`, ``, ` `, `{"address":"a:1"} x`,
}

// TestParseRegistrationAsParseMember checks RegistrationParser against
// ParseMember (encoding/json): the same values taken, with the same kept
// fields.
func TestParseRegistrationAsParseMember(t *testing.T) {
	for _, v := range registrationValues {
		checkRegistration(t, []byte(v))
	}
	// encoding/json refuses values nested deeper than 10,000.
	for _, depth := range []int{9999, 10000, 10001} {
		n := depth - 1 // the member object is one
		checkRegistration(t, []byte(`{"x":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`}`))
		checkRegistration(t, []byte(`{"labels":{"a":`+strings.Repeat("[", n-1)+strings.Repeat("]", n-1)+`}}`))
	}
}

func checkRegistration(t *testing.T, data []byte) {
	t.Helper()
	m, merr := ParseMember(data)
	var p RegistrationParser
	r, rerr := p.Parse(data)
	if (merr == nil) != (rerr == nil) {
		t.Fatalf("value %q: ParseMember error %v, Parse error %v", data, merr, rerr)
	}
	var labels map[string]string
	if r.Labels != nil {
		labels = map[string]string{}
		for i, l := range r.Labels {
			if i > 0 && r.Labels[i-1].Name >= l.Name {
				t.Fatalf("value %q: labels %v not sorted by name, or a name twice", data, r.Labels)
			}
			labels[l.Name] = l.Value
		}
	}
	if r.Address != m.Address || !reflect.DeepEqual(labels, m.Labels) || (labels == nil) != (m.Labels == nil) ||
		!reflect.DeepEqual(r.StartTime, m.StartTime) {
		t.Fatalf("value %q: Parse = %+v, want %+v", data, r, m)
	}
}

// FuzzParseRegistration checks RegistrationParser against ParseMember on
// any value.
func FuzzParseRegistration(f *testing.F) {
	for _, v := range registrationValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) { checkRegistration(t, []byte(v)) })
}

// TestParseRegistrationZone checks that a start time keeps its instant
// whatever zone the member wrote it in.
func TestParseRegistrationZone(t *testing.T) {
	var p RegistrationParser
	r, err := p.Parse([]byte(`{"start_time":"2026-01-02T05:04:05.5+02:00"}`))
	if want := time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC); err != nil || !r.StartTime.Equal(want) {
		t.Fatalf("start time %v, %v; want %v", r.StartTime, err, want)
	}
}
