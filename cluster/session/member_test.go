package session

import (
	"encoding/json"
	"testing"
)

// TestMemberHTTPCompatible checks that the http field of a member key and
// its readers of either version get along: a value without it parses with
// no HTTP address, and a reader that does not know it ignores it.
func TestMemberHTTPCompatible(t *testing.T) {
	old := `{"address":"10.0.0.1:7946","version":"v1","labels":{},"start_time":"2026-01-02T03:04:05Z","kind":"agent"}`
	m, err := ParseMember([]byte(old))
	if err != nil || m.HTTP != "" || m.Address != "10.0.0.1:7946" {
		t.Fatalf("ParseMember(value without http) = %+v, %v", m, err)
	}
	m.HTTP = "10.0.0.1:9477"
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var oldReader struct {
		Address string `json:"address"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &oldReader); err != nil || oldReader.Address != "10.0.0.1:7946" || oldReader.Version != "v1" {
		t.Fatalf("an older reader of %s: %+v, %v", data, oldReader, err)
	}
	if back, err := ParseMember(data); err != nil || back.HTTP != "10.0.0.1:9477" {
		t.Fatalf("ParseMember(%s) = %+v, %v", data, back, err)
	}
}
