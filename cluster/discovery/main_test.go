package discovery

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
	"github.com/procfleet/procfleet/prom/labels"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// parseJob decodes one job written as a scrape_configs entry, with the
// cluster document's strict decoding.
func parseJob(t testing.TB, doc string) *config.ScrapeConfig {
	t.Helper()
	var jobs config.ScrapeConfigs
	if err := yaml.Unmarshal([]byte(doc), &jobs); err != nil {
		t.Fatalf("cannot decode the job: %v\n%s", err, doc)
	}
	if len(jobs) != 1 {
		t.Fatalf("%d jobs; want one", len(jobs))
	}
	if err := jobs.Validate("scrape_configs"); err != nil {
		t.Fatal(err)
	}
	return &jobs[0]
}

// testConfig is DefaultConfig with a fast file poll.
func testConfig() Config {
	c := DefaultConfig()
	c.FilePoll = 20 * time.Millisecond
	c.FetchTimeout = 5 * time.Second
	return c
}

// runJob starts a Job of doc and stops it at the end of the test.
func runJob(t *testing.T, doc string, deps Deps) *Job {
	t.Helper()
	if deps.Config == (Config{}) {
		deps.Config = testConfig()
	}
	j, err := New(parseJob(t, doc), deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return j
}

// waitSet waits, up to a generous deadline, for a set that ok accepts,
// reading the job's updates, and returns it.
func waitSet(t *testing.T, j *Job, what string, ok func(Targets) bool) Targets {
	t.Helper()
	deadline := time.After(20 * time.Second)
	var last Targets
	for {
		select {
		case ts := <-j.Updates():
			last = ts
			if ok(ts) {
				return ts
			}
		case <-deadline:
			t.Fatalf("no set with %s within 20s; last:\n%s\nstatus: %+v", what, show(last.Labels), j.Status())
		}
	}
}

// waitStatus polls the job's status until ok accepts it.
func waitStatus(t *testing.T, j *Job, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := j.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status with %s within 20s; last: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addresses returns the __address__ of each label set.
func addresses(ls []labels.Labels) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Get("__address__")
	}
	return out
}

// hasAddresses reports whether a set's addresses are want, in order.
func hasAddresses(want ...string) func(Targets) bool {
	return func(ts Targets) bool { return strings.Join(addresses(ts.Labels), " ") == strings.Join(want, " ") }
}

func show(ls []labels.Labels) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// srcAt returns the status of the job's i-th source, the zero value
// before the job started it.
func srcAt(st Status, i int) SourceStatus {
	if i < len(st.Sources) {
		return st.Sources[i]
	}
	return SourceStatus{}
}
