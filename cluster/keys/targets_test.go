package keys

import (
	"errors"
	"strings"
	"testing"
)

func TestTargetKeys(t *testing.T) {
	s, err := New("prod")
	if err != nil {
		t.Fatal(err)
	}
	const gen = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ job, escaped string }{
		{"node", "node"},
		{"postgres-prod_1.x", "postgres-prod_1.x"},
		{"a/b", "a%2Fb"},
		{"snmp if_mib", "snmp%20if_mib"},
		{"%41", "%2541"},
		{"é", "%C3%A9"},
		{"..", ".."},
	} {
		m, err := s.TargetsManifest(c.job)
		if err != nil || m != "/procfleet/prod/targets/"+c.escaped {
			t.Errorf("TargetsManifest(%q) = %q, %v", c.job, m, err)
		}
		if job, ok := s.ParseTargetsManifest(m); !ok || job != c.job {
			t.Errorf("ParseTargetsManifest(%q) = %q, %v", m, job, ok)
		}
		k, err := s.TargetChunk(c.job, gen, 42)
		if err != nil || k != "/procfleet/prod/target-chunks/"+c.escaped+"/"+gen+"/000042" {
			t.Errorf("TargetChunk(%q) = %q, %v", c.job, k, err)
		}
		if !strings.HasPrefix(k, must(s.TargetChunksOf(c.job))) || !strings.HasPrefix(k, must(s.TargetChunksGen(c.job, gen))) {
			t.Errorf("chunk key %q outside its prefixes", k)
		}
		if strings.HasPrefix(k, s.Targets()) {
			t.Errorf("chunk key %q under the manifests' prefix", k)
		}
		job, g, n, ok := s.ParseTargetChunk(k)
		if !ok || job != c.job || g != gen || n != 42 {
			t.Errorf("ParseTargetChunk(%q) = %q %q %d %v", k, job, g, n, ok)
		}
	}
	for _, k := range []string{
		"/procfleet/prod/targets/", "/procfleet/prod/targets/a/b", "/procfleet/prod/targets/%41",
		"/procfleet/prod/targets/%zz", "/procfleet/other/targets/node", "/procfleet/prod/targets/%FF",
	} {
		if job, ok := s.ParseTargetsManifest(k); ok {
			t.Errorf("ParseTargetsManifest(%q) = %q, want not ok", k, job)
		}
	}
	for _, k := range []string{
		"/procfleet/prod/target-chunks/node/" + gen + "/42",
		"/procfleet/prod/target-chunks/node/" + gen + "/-00042",
		"/procfleet/prod/target-chunks/node/" + gen + "/+00042",
		"/procfleet/prod/target-chunks/node/ABC/000042",
		"/procfleet/prod/target-chunks/node/" + gen,
		"/procfleet/prod/target-chunks/node/" + gen + "/000042/x",
		"/procfleet/prod/targets/node/" + gen + "/000042",
	} {
		if _, _, _, ok := s.ParseTargetChunk(k); ok {
			t.Errorf("ParseTargetChunk(%q) ok, want not ok", k)
		}
	}
	for _, job := range []string{"", strings.Repeat("j", MaxJobLen+1), "\xff"} {
		if _, err := s.TargetsManifest(job); !errors.Is(err, ErrInvalidName) {
			t.Errorf("TargetsManifest(%q) = %v, want ErrInvalidName", job, err)
		}
	}
	for _, g := range []string{"", "ABC", "xyz", strings.Repeat("a", 65)} {
		if _, err := s.TargetChunk("node", g, 0); !errors.Is(err, ErrInvalidName) {
			t.Errorf("TargetChunk(generation %q) = %v, want ErrInvalidName", g, err)
		}
	}
	for _, n := range []int{-1, MaxTargetChunks} {
		if _, err := s.TargetChunk("node", gen, n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("TargetChunk(%d) = %v, want ErrInvalidName", n, err)
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
