package discovery

import (
	"slices"
	"testing"

	"github.com/procfleet/procfleet/prom/labels"
)

const resolveJob = `
- job_name: db
  scrape_interval: 30s
  scrape_timeout: 5s
  metrics_path: /probe
  scheme: https
  params:
    module: [tcp, icmp]
    empty: []
  static_configs: [{targets: ["x:1"]}]
  relabel_configs:
    - source_labels: [__meta_filepath]
      target_label: file
    - source_labels: [env]
      regex: drop-me
      action: drop
`

func TestResolve(t *testing.T) {
	job := parseJob(t, resolveJob)
	g := func(groupLabels []string, targets ...[]string) Group {
		out := Group{Labels: labels.FromStrings(groupLabels...)}
		for _, tl := range targets {
			out.Targets = append(out.Targets, labels.FromStrings(tl...))
		}
		return out
	}
	groups := []Group{
		// The job-level labels, and a meta label read by relabeling then
		// deleted.
		g([]string{"__meta_filepath", "/sd/a.yaml", "env", "prod"}, []string{"__address__", "a:1"}),
		// A group's labels win over the job's, a target's over its group's;
		// a target's empty label hides its group's and is absent.
		g([]string{"job", "other", "__scheme__", "http", "env", "prod", "__param_module", "http_2xx"},
			[]string{"__address__", "b:1", "env", ""}),
		// Dropped by relabeling.
		g([]string{"env", "drop-me"}, []string{"__address__", "c:1"}),
		// No address: left out, counted.
		g(nil, []string{"__address__", ""}),
		// The same target twice: once.
		g([]string{"__meta_x", "1"}, []string{"__address__", "d:1"}),
		g([]string{"__meta_x", "2"}, []string{"__address__", "d:1"}),
	}
	got, st, err := Resolve(job, groups)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"__metrics_path__", "/probe", "__scrape_interval__", "30s", "__scrape_timeout__", "5s"}
	want := []labels.Labels{
		labels.FromStrings(append([]string{"__address__", "a:1", "__param_module", "tcp", "__scheme__", "https", "env", "prod", "file", "/sd/a.yaml", "job", "db"}, common...)...),
		labels.FromStrings(append([]string{"__address__", "b:1", "__param_module", "http_2xx", "__scheme__", "http", "job", "other"}, common...)...),
		labels.FromStrings(append([]string{"__address__", "d:1", "__param_module", "tcp", "__scheme__", "https", "job", "db"}, common...)...),
	}
	if !slices.EqualFunc(got, want, labels.Labels.Equal) {
		t.Fatalf("Resolve =\n%s\nwant\n%s", show(got), show(want))
	}
	if st != (ResolveStats{Discovered: 6, Dropped: 1, NoAddress: 1}) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestMerge(t *testing.T) {
	f := func(a, b []string, want ...string) {
		t.Helper()
		got := merge(nil, labels.FromStrings(a...), labels.FromStrings(b...))
		if !got.Equal(labels.FromStrings(want...)) {
			t.Errorf("merge(%v, %v) = %v; want %v", a, b, got, want)
		}
	}
	f(nil, nil)
	f([]string{"a", "1"}, nil, "a", "1")
	f(nil, []string{"a", "1"}, "a", "1")
	f([]string{"a", "1", "c", "3"}, []string{"b", "2", "c", "x", "d", "4"}, "a", "1", "b", "2", "c", "3", "d", "4")
	f([]string{"a", ""}, []string{"a", "1", "b", ""}) // a's empty hides b's, b's empty is absent
}

func TestCompareLabels(t *testing.T) {
	ls := []labels.Labels{
		labels.FromStrings("__address__", "b:1"),
		labels.FromStrings("__address__", "a:1", "z", "1"),
		labels.FromStrings("__address__", "a:1"),
		labels.FromStrings("A", "1"),
		labels.FromStrings("__address__", "a:1"),
	}
	got := sortUnique(ls)
	want := []string{`{A="1"}`, `{__address__="a:1"}`, `{__address__="a:1", z="1"}`, `{__address__="b:1"}`}
	if len(got) != len(want) {
		t.Fatalf("sortUnique = %s", show(got))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("sortUnique = %s; want %v", show(got), want)
		}
	}
}
