package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/procfleet/procfleet/config"
)

// parseJobs decodes scrape_configs.
func parseJobs(t *testing.T, doc string) []config.ScrapeConfig {
	t.Helper()
	var jobs config.ScrapeConfigs
	if err := yaml.Unmarshal([]byte(doc), &jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// waitTargets waits for Changed until ok accepts the Manager's sets.
func waitTargets(t *testing.T, m *Manager, what string, ok func(map[string]Targets) bool) map[string]Targets {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if ts := m.Targets(); ok(ts) {
			return ts
		}
		select {
		case <-m.Changed():
		case <-deadline:
			t.Fatalf("no sets with %s within 20s; last: %v, status %+v", what, m.Targets(), m.Status())
		}
	}
}

func jobNames(ts map[string]Targets) string {
	var names []string
	for n := range ts {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

func TestManager(t *testing.T) {
	s := startSD(t, `[{"targets": ["b:1"]}]`, false)
	m, err := NewManager(Deps{Config: testConfig()})
	if err != nil {
		t.Fatal(err)
	}
	jobs := func(aLabel string, withC bool) string {
		doc := fmt.Sprintf(`
- job_name: a
  static_configs: [{targets: ["a:1"], labels: {v: %q}}]
- job_name: b
  http_sd_configs: [{url: %q, refresh_interval: 1h}]
`, aLabel, s.URL+"/b")
		if withC {
			doc += "- job_name: c\n  static_configs: [{targets: [\"c:1\"]}]\n"
		}
		return doc
	}
	// Applied before Run: the jobs start with it.
	if err := m.Apply(parseJobs(t, jobs("1", false))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitTargets(t, m, "a and b", func(ts map[string]Targets) bool { return jobNames(ts) == "a b" })

	// a changes, b stays as it was (not fetched again: 1h), c is new.
	if err := m.Apply(parseJobs(t, jobs("2", true))); err != nil {
		t.Fatal(err)
	}
	ts := waitTargets(t, m, "a changed and c", func(ts map[string]Targets) bool {
		return jobNames(ts) == "a b c" && ts["a"].Labels[0].Get("v") == "2"
	})
	if ts["b"].Version != 1 || s.hitsOf("/b") != 1 {
		t.Fatalf("b was restarted: version %d, %d fetches", ts["b"].Version, s.hitsOf("/b"))
	}

	// An invalid list changes nothing.
	if err := m.Apply(parseJobs(t, "- job_name: a\n  static_configs: [{targets: [\"x:1\"]}]\n- job_name: a\n  static_configs: [{targets: [\"y:1\"]}]\n")); err == nil ||
		!strings.Contains(err.Error(), "is also the job_name of") {
		t.Fatalf("duplicate names: %v", err)
	}
	// Removed jobs go, with a signal.
	if err := m.Apply(parseJobs(t, jobs("2", false))[:1]); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, m, "only a", func(ts map[string]Targets) bool { return jobNames(ts) == "a" })
	st := m.Status()
	if len(st) != 1 || st[0].Job != "a" || st[0].Targets != 1 {
		t.Fatalf("status = %+v", st)
	}
	if err := m.Run(ctx); err == nil {
		t.Fatal("a Manager ran twice")
	}
}
