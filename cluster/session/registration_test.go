package session

import (
	"reflect"
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
	`{"address":"a:1",}`, `{"address":"a:1"`, `[]`, `5`, `"x"`, ``, ` `, `{"address":"a:1"} x`,
}

// TestParseRegistrationAsParseMember checks ParseRegistration against
// ParseMember: the same values taken, with the same kept fields.
func TestParseRegistrationAsParseMember(t *testing.T) {
	for _, v := range registrationValues {
		checkRegistration(t, []byte(v))
	}
}

func checkRegistration(t *testing.T, data []byte) {
	t.Helper()
	m, merr := ParseMember(data)
	r, rerr := ParseRegistration(data)
	if (merr == nil) != (rerr == nil) {
		t.Fatalf("value %q: ParseMember error %v, ParseRegistration error %v", data, merr, rerr)
	}
	want := Registration{Address: m.Address, Labels: m.Labels, StartTime: m.StartTime}
	if !reflect.DeepEqual(r, want) || (r.Labels == nil) != (m.Labels == nil) || !r.StartTime.Equal(m.StartTime) {
		t.Fatalf("value %q: ParseRegistration = %+v, want %+v", data, r, want)
	}
}

// FuzzParseRegistration checks ParseRegistration against ParseMember on
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
	r, err := ParseRegistration([]byte(`{"start_time":"2026-01-02T05:04:05.5+02:00"}`))
	if want := time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC); err != nil || !r.StartTime.Equal(want) {
		t.Fatalf("start time %v, %v; want %v", r.StartTime, err, want)
	}
}
