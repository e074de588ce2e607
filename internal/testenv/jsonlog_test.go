package testenv

import (
	"strings"
	"testing"
)

func TestParseJSONLog(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"b":{"c":[{"d":1},{"d":2}]}}`, ""},
		{`{"level":"INFO","component":"agent","component":"ship"}`, `key "component" twice`},
		{`{"a":{"x":1,"x":2}}`, `key "a.x" twice`},
		{`{"a":[{"x":1,"x":2}]}`, `key "a[].x" twice`},
		{`[1]`, "not a JSON object"},
		{`{"a":1}{"b":2}`, "more than one JSON value"},
		{`{"a":1`, "EOF"},
	} {
		_, err := ParseJSONLog([]byte(c.in + "\n"))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.in, err, c.want)
		}
	}
}
