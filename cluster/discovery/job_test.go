package discovery

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// A failing source keeps its last targets while the job's other sources
// go on changing the set.
func TestJobFailingSourceKeepsLast(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), `[{"targets": ["file:1"]}]`)
	s := startSD(t, `[{"targets": ["http:1"]}]`, false)
	j := runJob(t, fmt.Sprintf(`
- job_name: mixed
  static_configs: [{targets: ["static:1"]}]
  file_sd_configs: [{files: [a.json]}]
  http_sd_configs: [{url: %q, refresh_interval: 50ms}]
`, s.URL), Deps{FileSDDir: dir})
	waitSet(t, j, "every source", hasAddresses("file:1", "http:1", "static:1"))
	s.set(503, "text/plain", "down")
	waitStatus(t, j, "the HTTP failure", func(st Status) bool { return srcAt(st, 2).LastError != "" })
	writeFile(t, filepath.Join(dir, "a.json"), `[{"targets": ["file:2"]}]`)
	waitSet(t, j, "the file's change with HTTP's last targets", hasAddresses("file:2", "http:1", "static:1"))
	errs := j.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "job mixed: http_sd_configs[0] ("+s.URL+"): server returned HTTP status 503") ||
		!strings.Contains(errs[0].Error(), "keeping its last 1 targets") {
		t.Fatalf("Errors = %v", errs)
	}
}

// A source that has never refreshed without error is named in the set's
// Incomplete, until it does.
func TestJobIncomplete(t *testing.T) {
	s := startSD(t, "down", false)
	s.set(503, "text/plain", "down")
	j := runJob(t, fmt.Sprintf("- job_name: inc\n  static_configs: [{targets: [\"s:1\"]}]\n  http_sd_configs: [{url: %q, refresh_interval: 50ms}]\n", s.URL), Deps{})
	ts := waitSet(t, j, "the first set", func(Targets) bool { return true })
	if strings.Join(ts.Incomplete, " ") != "http_sd_configs[0]" || strings.Join(addresses(ts.Labels), " ") != "s:1" {
		t.Fatalf("first set: %v, incomplete %v", addresses(ts.Labels), ts.Incomplete)
	}
	s.set(200, "application/json", "[]") // up, and empty: complete without a target more
	ts = waitSet(t, j, "a complete set", func(ts Targets) bool { return len(ts.Incomplete) == 0 })
	if ts.Version != 2 || strings.Join(addresses(ts.Labels), " ") != "s:1" {
		t.Fatalf("complete set: version %d, %v", ts.Version, addresses(ts.Labels))
	}
	// Failing again later keeps the set complete, with the last targets.
	s.set(503, "text/plain", "down")
	waitStatus(t, j, "the failure", func(st Status) bool { return srcAt(st, 1).LastError != "" })
	if cur, _ := j.Current(); cur.Version != 2 || len(cur.Incomplete) != 0 {
		t.Fatalf("after a later failure: %+v", cur)
	}
}

// The first set waits for every source's first refresh, so that a slow
// source does not publish a set without its targets first.
func TestJobFirstSetHasEverySource(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"targets": ["slow:1"]}]`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	j := runJob(t, fmt.Sprintf("- job_name: slow\n  static_configs: [{targets: [\"static:1\"]}]\n  http_sd_configs: [{url: %q}]\n", srv.URL), Deps{})
	// The static source reported, the HTTP one is in its fetch: no set.
	waitStatus(t, j, "the static source's refresh", func(st Status) bool { return srcAt(st, 0).Refreshes == 1 })
	if _, ok := j.Current(); ok {
		t.Fatal("a set was delivered before the HTTP source's first refresh")
	}
	release <- struct{}{}
	ts := waitSet(t, j, "both sources", func(Targets) bool { return true })
	if got := strings.Join(addresses(ts.Labels), " "); got != "slow:1 static:1" || ts.Version != 1 {
		t.Fatalf("first set: version %d, %s", ts.Version, got)
	}
}

// Apply changes a job live: a changed relabeling resolves the sources'
// groups again without fetching them; a changed source restarts alone.
func TestJobApply(t *testing.T) {
	s := startSD(t, `[{"targets": ["http:1"]}]`, false)
	dns := startDNS(t)
	dns.setAddrs("db.example.test", "192.0.2.1")
	job := func(path, relabel string) string {
		return fmt.Sprintf(`
- job_name: live
  static_configs: [{targets: ["static:1"]}]
  http_sd_configs: [{url: %q, refresh_interval: 1h}]
  dns_sd_configs: [{names: [db.example.test.], type: A, port: 9187, refresh_interval: 1h}]
  relabel_configs: [{target_label: v, replacement: %q}]
`, s.URL+path, relabel)
	}
	j := runJob(t, job("/a", "1"), Deps{Resolver: dns.resolver()})
	waitSet(t, j, "v=1", func(ts Targets) bool { return len(ts.Labels) == 3 && ts.Labels[0].Get("v") == "1" })
	queries := dns.queries.Load()

	if err := j.Apply(parseJob(t, job("/a", "2"))); err != nil {
		t.Fatal(err)
	}
	ts := waitSet(t, j, "v=2", func(ts Targets) bool { return ts.Labels[0].Get("v") == "2" })
	if got := strings.Join(addresses(ts.Labels), " "); got != "192.0.2.1:9187 http:1 static:1" {
		t.Fatalf("after the relabeling's change: %s", got)
	}
	if n := s.hitsOf("/a"); n != 1 {
		t.Fatalf("the HTTP source was fetched %d times; want once (its interval is 1h)", n)
	}

	s.set(200, "application/json", `[{"targets": ["http:2"]}]`)
	if err := j.Apply(parseJob(t, job("/b", "2"))); err != nil {
		t.Fatal(err)
	}
	ts = waitSet(t, j, "http:2", hasAddresses("192.0.2.1:9187", "http:2", "static:1"))
	if n := s.hitsOf("/a"); n != 1 {
		t.Fatalf("the old HTTP source was fetched %d times", n)
	}
	if n := dns.queries.Load(); n != queries {
		t.Fatalf("the DNS source was restarted: %d more queries", n-queries)
	}
	st := j.Status()
	if len(st.Sources) != 3 || srcAt(st, 2).Where != s.URL+"/b" || srcAt(st, 1).Refreshes != 1 {
		t.Fatalf("status = %+v", st)
	}
	if err := j.Apply(parseJob(t, strings.Replace(job("/b", "2"), "job_name: live", "job_name: other", 1))); err == nil {
		t.Fatal("Apply took another job's config")
	}
}

// A job whose sources together cross a bound keeps its last set and says
// so; back within it, it delivers again.
func TestJobBounds(t *testing.T) {
	s := startSD(t, `[{"targets": ["http:1"]}]`, false)
	cfg := testConfig()
	cfg.MaxTargets = 3
	j := runJob(t, fmt.Sprintf("- job_name: bound\n  static_configs: [{targets: [\"s:1\", \"s:2\"]}]\n  http_sd_configs: [{url: %q, refresh_interval: 50ms}]\n", s.URL),
		Deps{Config: cfg})
	waitSet(t, j, "three targets", hasAddresses("http:1", "s:1", "s:2"))
	s.set(200, "application/json", `[{"targets": ["http:1", "http:2"]}]`)
	st := waitStatus(t, j, "the job's error", func(st Status) bool { return st.Error != "" })
	if !strings.Contains(st.Error, "more than 3 targets") || !strings.Contains(st.Error, "http_sd_configs[0]: 2") || st.Targets != 3 {
		t.Fatalf("status = %+v", st)
	}
	if errs := j.Errors(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "job bound: its sources together hold more than 3 targets") {
		t.Fatalf("Errors = %v", errs)
	}
	s.set(200, "application/json", `[{"targets": ["http:3"]}]`)
	waitSet(t, j, "back within", hasAddresses("http:3", "s:1", "s:2"))
	if st := j.Status(); st.Error != "" {
		t.Fatalf("error kept: %q", st.Error)
	}
}

// Updates holds the latest set only: a reader that comes late gets the
// newest, once.
func TestJobUpdatesLatestOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), `[{"targets": ["v:1"]}]`)
	j := runJob(t, "- job_name: latest\n  file_sd_configs: [{files: [a.json]}]\n", Deps{FileSDDir: dir})
	for v := 2; v <= 4; v++ {
		waitStatus(t, j, fmt.Sprintf("version %d", v-1), func(Status) bool { cur, _ := j.Current(); return cur.Version == uint64(v-1) })
		writeFile(t, filepath.Join(dir, "a.json"), fmt.Sprintf(`[{"targets": ["v:%d"]}]`, v))
	}
	waitStatus(t, j, "version 4", func(Status) bool { cur, _ := j.Current(); return cur.Version == 4 })
	ts := <-j.Updates()
	if ts.Version != 4 || addresses(ts.Labels)[0] != "v:4" {
		t.Fatalf("read %d (%v); want the latest, 4", ts.Version, addresses(ts.Labels))
	}
	// The file source polls on; after more polls, nothing new is waiting.
	n := srcAt(j.Status(), 0).Refreshes
	waitStatus(t, j, "more polls", func(st Status) bool { return srcAt(st, 0).Refreshes >= n+3 })
	select {
	case ts := <-j.Updates():
		t.Fatalf("a second set, version %d, was waiting", ts.Version)
	default:
	}
}
