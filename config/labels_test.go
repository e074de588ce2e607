package config

import (
	"maps"
	"strings"
	"testing"
)

func TestParseLabels(t *testing.T) {
	ok := func(s string, want map[string]string) {
		t.Helper()
		got, err := ParseLabels(s)
		if err != nil || !maps.Equal(got, want) || got == nil {
			t.Errorf("ParseLabels(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	ok("", map[string]string{})
	ok("zone=eu-1", map[string]string{"zone": "eu-1"})
	ok("zone=eu-1,rack=a=b,zone=eu-2", map[string]string{"zone": "eu-2", "rack": "a=b"})
	ok("team/app=x$1", map[string]string{"team/app": "x$1"})

	bad := func(s, want string) {
		t.Helper()
		got, err := ParseLabels(s)
		if err == nil || err.Error() != want {
			t.Errorf("ParseLabels(%q) = %v, %v; want error %q", s, got, err, want)
		}
	}
	bad("zone", `--labels "zone": want k=v pairs separated by commas`)
	bad("zone=a,", `--labels "zone=a,": want k=v pairs separated by commas`)
	bad("=a", `--labels "=a": want k=v pairs separated by commas`)
	bad("1zone=a", `--labels: key "1zone" is not accepted; want 1 to 63 of A-Z, a-z, 0-9, '_', '.', '/' and '-', starting with a letter or '_'`)
	bad("zone=a b", `--labels: zone: value "a b" is not accepted; want 1 to 253 printable characters without spaces`)
	bad("zone=", `--labels: zone: value "" is not accepted; want 1 to 253 printable characters without spaces`)
	if _, err := ParseLabels("zone=" + strings.Repeat("x", 254)); err == nil {
		t.Error("a 254-character value was accepted")
	}
}
