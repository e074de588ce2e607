package keys

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	f := func(name string, ok bool, wantInErr string) {
		t.Helper()
		err := ValidateNode(name)
		if ok {
			if err != nil {
				t.Errorf("ValidateNode(%q) = %v, want nil", name, err)
			}
			return
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Fatalf("ValidateNode(%q) = %v, want ErrInvalidName", name, err)
		}
		if !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ValidateNode(%q) = %q, want it to mention %q", name, err, wantInErr)
		}
	}
	f("a", true, "")
	f("0", true, "")
	f("web-01.dc1_x", true, "")
	f(strings.Repeat("a", MaxNameLen), true, "")
	f("", false, "empty node name")
	f("-a", false, `'-' at character 1`)
	f(".a", false, `'.' at character 1`)
	f("Web", false, `'W' at character 1`)
	f("a/b", false, `'/' at character 2`)
	f("a b", false, `' ' at character 2`)
	f("hé", false, `'é' at character 2`)
	f(strings.Repeat("a", MaxNameLen+1), false, "254 bytes long")

	if err := ValidateCluster("Prod"); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Errorf("ValidateCluster(Prod) = %v, want an error naming the cluster", err)
	}
}

func TestSpace(t *testing.T) {
	if _, err := New("a/b"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("New(a/b) = %v, want ErrInvalidName", err)
	}
	s, err := New("prod")
	if err != nil {
		t.Fatal(err)
	}
	eq := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	eq(s.Prefix(), "/procfleet/prod/")
	eq(s.Config(), "/procfleet/prod/config")
	eq(s.ConfigHistoryRev(42), "/procfleet/prod/config-history/00000000000000000042")
	eq(s.ConfigMeta(), "/procfleet/prod/config-meta")
	eq(s.ConfigMetaHistoryRev(42), "/procfleet/prod/config-meta-history/00000000000000000042")
	eq(s.MembersOf(Relay), "/procfleet/prod/members/relays/")
	m, err := s.Member(Agent, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	eq(m, "/procfleet/prod/members/agents/web-1")
	st, err := s.Status("web-1")
	if err != nil {
		t.Fatal(err)
	}
	eq(st, "/procfleet/prod/status/web-1")

	if _, err := s.Member(Agent, "../x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Member(../x) = %v, want ErrInvalidName", err)
	}
	if _, err := s.Member("agents", "x"); !errors.Is(err, ErrInvalidKind) {
		t.Errorf("Member(kind agents) = %v, want ErrInvalidKind", err)
	}
	if _, err := s.Status(""); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Status(\"\") = %v, want ErrInvalidName", err)
	}

	if k, node, ok := s.ParseMember(m); !ok || k != Agent || node != "web-1" {
		t.Errorf("ParseMember(%q) = %q, %q, %v", m, k, node, ok)
	}
	if _, _, ok := s.ParseMember("/procfleet/other/members/agents/web-1"); ok {
		t.Error("ParseMember accepted another cluster's key")
	}
	if node, ok := s.ParseStatus(st); !ok || node != "web-1" {
		t.Errorf("ParseStatus(%q) = %q, %v", st, node, ok)
	}
	if rev, ok := s.ParseConfigHistory(s.ConfigHistoryRev(7)); !ok || rev != 7 {
		t.Errorf("ParseConfigHistory = %d, %v", rev, ok)
	}
	if rev, ok := s.ParseConfigMetaHistory(s.ConfigMetaHistoryRev(7)); !ok || rev != 7 {
		t.Errorf("ParseConfigMetaHistory = %d, %v", rev, ok)
	}
	if _, ok := s.ParseConfigMetaHistory(s.ConfigHistoryRev(7)); ok {
		t.Error("ParseConfigMetaHistory took a config-history key")
	}
	tw, err := s.TargetWeight("web-1")
	if err != nil {
		t.Fatal(err)
	}
	eq(tw, "/procfleet/prod/target-weights/web-1")
	if node, ok := s.ParseTargetWeight(tw); !ok || node != "web-1" {
		t.Errorf("ParseTargetWeight(%q) = %q, %v", tw, node, ok)
	}
	if _, ok := s.ParseTargetWeight(s.TargetWeights() + "a/b"); ok {
		t.Error("ParseTargetWeight took a key with a slash in the node")
	}
	if _, err := s.TargetWeight(".."); !errors.Is(err, ErrInvalidName) {
		t.Errorf("TargetWeight(..) = %v, want ErrInvalidName", err)
	}
	if a, b := s.ConfigHistoryRev(9), s.ConfigHistoryRev(10); a >= b {
		t.Errorf("history keys do not sort by revision: %q >= %q", a, b)
	}
}
