package promtext

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

const testStamp = 1700000000000

// scrapeCase is one body scraped with one target's settings.
type scrapeCase struct {
	name   string
	body   string
	opt    func(o *ScrapeOptions)
	rules  []config.RelabelConfig
	out    string // the lines written, stamp written as NOW
	err    string // a part of the error, "" for none
	stats  *ScrapeStats
	target labels.Labels // default job="j", instance="h:1"
}

var scrapeCases = []scrapeCase{
	{name: "splice", body: "# HELP a help\n# TYPE a counter\na_total 1\nb{x=\"1\",y=\"\"} 2.5\n",
		out:   "a_total{instance=\"h:1\",job=\"j\"} 1 NOW\nb{x=\"1\",instance=\"h:1\",job=\"j\"} 2.5 NOW\n",
		stats: &ScrapeStats{Scraped: 2, PostRelabel: 2, SeriesAdded: 2, Written: 2}},
	{name: "no target labels", target: labels.Labels{}, body: "a 1\nb{x=\"1\"} 2\n",
		out: "a 1 NOW\nb{x=\"1\"} 2 NOW\n"},
	{name: "blanks and commas as Prometheus takes them", body: "a { x = \"1\"  y=\"2\", } 3 \t\nb{x=\"1\" y=\"2\"} 4\n",
		out: "a{x=\"1\",y=\"2\",instance=\"h:1\",job=\"j\"} 3 NOW\nb{x=\"1\",y=\"2\",instance=\"h:1\",job=\"j\"} 4 NOW\n"},
	{name: "exported_ on a clash", body: "a{instance=\"x\",job=\"y\",exported_job=\"z\"} 1\n",
		out: "a{exported_exported_job=\"y\",exported_instance=\"x\",exported_job=\"z\",instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "empty scraped value gives way", body: "a{job=\"\"} 1\n",
		out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "honor_labels keeps the scraped", body: "a{job=\"y\"} 1\nb{job=\"\"} 2\n", opt: honorLabels,
		out: "a{job=\"y\",instance=\"h:1\"} 1 NOW\nb{instance=\"h:1\"} 2 NOW\n"},
	{name: "timestamps honored", body: "a 1 1699999999000\n",
		out: "a{instance=\"h:1\",job=\"j\"} 1 1699999999000\n"},
	{name: "timestamps not honored", body: "a 1 1699999999000\n", opt: func(o *ScrapeOptions) { o.HonorTimestamps = false },
		out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "timestamps out of bounds dropped", body: "a 1 1700000700000\nb 1 1700000600000\nc 1 5\n",
		out:   "b{instance=\"h:1\",job=\"j\"} 1 1700000600000\n",
		stats: &ScrapeStats{Scraped: 3, PostRelabel: 3, SeriesAdded: 1, Written: 1, OutOfBounds: 2}},
	{name: "duplicates without timestamp dropped", body: "a 1\na 2\nb 1 1699999999000\nb 2 1699999999001\n",
		out:   "a{instance=\"h:1\",job=\"j\"} 1 NOW\nb{instance=\"h:1\",job=\"j\"} 1 1699999999000\nb{instance=\"h:1\",job=\"j\"} 2 1699999999001\n",
		stats: &ScrapeStats{Scraped: 4, PostRelabel: 4, SeriesAdded: 2, Written: 3, Duplicates: 1, FirstDuplicateLine: 2}},
	{name: "duplicates fail the scrape with FailOnDuplicates", body: "a 1\nb 1\na 2\n",
		opt: func(o *ScrapeOptions) { o.FailOnDuplicates = true },
		err: "duplicate series: line 3 gives a series already given, without a timestamp (1 such samples in the body)"},
	{name: "samples with their own timestamps are no duplicates", body: "b 1 1699999999000\nb 2 1699999999001\n",
		opt: func(o *ScrapeOptions) { o.FailOnDuplicates = true },
		out: "b{instance=\"h:1\",job=\"j\"} 1 1699999999000\nb{instance=\"h:1\",job=\"j\"} 2 1699999999001\n"},
	{name: "le and quantile normalized", body: "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"x\"} 1\n# TYPE s summary\ns{quantile=\"0.50\"} 1\ns{le=\"1\"} 1\n",
		out: "h_bucket{le=\"1.0\",instance=\"h:1\",job=\"j\"} 1 NOW\nh_bucket{le=\"+Inf\",instance=\"h:1\",job=\"j\"} 1 NOW\nh_bucket{le=\"x\",instance=\"h:1\",job=\"j\"} 1 NOW\n" +
			"s{quantile=\"0.5\",instance=\"h:1\",job=\"j\"} 1 NOW\ns{le=\"1\",instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "values VictoriaMetrics would misread are formatted again", body: "a +1\nb 1.5e3\nc -Inf\nd NaN\ne +inf\nf 1e-400\ng .5\n",
		out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\nb{instance=\"h:1\",job=\"j\"} 1.5e3 NOW\nc{instance=\"h:1\",job=\"j\"} -Inf NOW\n" +
			"d{instance=\"h:1\",job=\"j\"} NaN NOW\ne{instance=\"h:1\",job=\"j\"} +inf NOW\nf{instance=\"h:1\",job=\"j\"} 1e-400 NOW\ng{instance=\"h:1\",job=\"j\"} .5 NOW\n"},
	{name: "escapes", body: "a{x=\"q\\\"\\\\\\n\",y=\"C:\\temp\"} 1\n",
		out: "a{x=\"q\\\"\\\\\\n\",y=\"C:\\\\temp\",instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "quoted names", body: "{\"a\", \"x\"=\"1\"} 1\nb{\"y\"=\"2\"} 2\n",
		out: "a{instance=\"h:1\",job=\"j\",x=\"1\"} 1 NOW\nb{instance=\"h:1\",job=\"j\",y=\"2\"} 2 NOW\n"},
	{name: "quoted name not legacy", body: "{\"a.b\"} 1\n", err: "invalid metric name"},
	{name: "NUL at a line's start ends the body", body: "a 1\n\x00garbage\n",
		out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "empty body", body: "", out: "", stats: &ScrapeStats{}},
	{name: "last line without newline", body: "a 1", out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},

	{name: "metric relabeling", body: "a{x=\"1\"} 1\nb{x=\"2\"} 2\nc 3\n",
		rules: []config.RelabelConfig{
			rule(config.RelabelDrop, "__name__", "b", "", ""),
			rule(config.RelabelReplace, "x", "(.+)", "y", "v$1"),
		},
		out:   "a{instance=\"h:1\",job=\"j\",x=\"1\",y=\"v1\"} 1 NOW\nc{instance=\"h:1\",job=\"j\"} 3 NOW\n",
		stats: &ScrapeStats{Scraped: 3, PostRelabel: 2, SeriesAdded: 2, Written: 2}},
	{name: "relabeling sees the target labels", body: "a 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelReplace, "instance", "h:(.*)", "port", "$1")},
		out:   "a{instance=\"h:1\",job=\"j\",port=\"1\"} 1 NOW\n"},
	{name: "labelmap to an invalid name", body: "a{x_1=\"1\"} 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelLabelMap, "", "x_(.*)", "", "$1")}, err: "invalid label name \"1\""},
	{name: "labelmap to an empty name", body: "a{x_=\"1\"} 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelLabelMap, "", "x_(.*)", "", "$1")}, err: "invalid label name \"\""},
	{name: "__name__ removed", body: "a 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelLabelDrop, "", "__name__", "", "")}, err: "missing metric name"},
	{name: "metric renamed to an invalid name", body: "a 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelReplace, "__name__", ".*", "__name__", "a-b")}, err: "invalid metric name"},

	{name: "sample_limit", body: "a 1\nb 2\nc 3\nc 4\n", opt: func(o *ScrapeOptions) { o.SampleLimit = 2 }, err: "sample limit exceeded",
		// The first c is over the limit, so not cached: the second is no
		// duplicate (as in Prometheus).
		stats: &ScrapeStats{Scraped: 4, PostRelabel: 4, SeriesAdded: 2, Written: 2}},
	{name: "sample_limit counts after relabeling", body: "a 1\nb 2\nc 3\n", opt: func(o *ScrapeOptions) { o.SampleLimit = 2 },
		rules: []config.RelabelConfig{rule(config.RelabelDrop, "__name__", "b", "", "")},
		out:   "a{instance=\"h:1\",job=\"j\"} 1 NOW\nc{instance=\"h:1\",job=\"j\"} 3 NOW\n"},
	{name: "label_limit counts the name and target labels", body: "a{x=\"1\"} 1\n", opt: func(o *ScrapeOptions) { o.LabelLimit = 3 },
		err: "label_limit exceeded (metric: a, number of labels: 4, limit: 3)"},
	{name: "label_limit at the limit", body: "a{x=\"1\"} 1\n", opt: func(o *ScrapeOptions) { o.LabelLimit = 4 },
		out: "a{x=\"1\",instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "VictoriaMetrics' label count", body: "a{" + manyLabels(31) + "} 1\n", err: "too many labels"},
	{name: "VictoriaMetrics' label value length", body: "a{x=\"" + strings.Repeat("v", 4097) + "\"} 1\n", err: "label value too long"},

	{name: "garbage", body: "a 1\nthis is not a sample\n", err: "line 2, column 6: invalid value"},
	{name: "invalid UTF-8", body: "a{x=\"\xff\"} 1\n", err: "invalid UTF-8"},
	{name: "duplicate label", body: "a{x=\"1\",x=\"2\"} 1\n", err: "duplicate label name"},
	{name: "__name__ in braces", body: "a{__name__=\"b\"} 1\n", err: "duplicate label name __name__"},
	{name: "a name twice that a target label replaces once", body: "a{job=\"x\",job=\"y\"} 1\n", err: "duplicate label name job"},
	{name: "a name twice that a rule deletes", body: "a{x=\"1\",x=\"2\"} 1\n",
		rules: []config.RelabelConfig{rule(config.RelabelLabelDrop, "", "x", "", "")}, out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "a name twice out of bounds", body: "a{x=\"1\",x=\"2\"} 1 1800000000000\nb 1\n", out: "b{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "a name twice that no label replaces", body: "a{job=\"x\",job=\"y\"} 1\n", opt: honorLabels, err: "duplicate label name job"},
	{name: "no name", body: "{x=\"1\"} 1\n", err: "metric name not set"},
	{name: "blank before name", body: " a 1\n", err: "blanks before the metric name"},
	{name: "CRLF", body: "a 1\r\n", err: "invalid value"},
	{name: "negative timestamp", body: "a 1 -5\n", err: "invalid timestamp"},
	{name: "timestamp too large", body: "a 1 99999999999999999999\n", err: "timestamp out of int64 range"},
	{name: "text after the timestamp", body: "a 1 2 3\n", err: "unexpected text"},
	{name: "hex value", body: "a 0x1p3\n", err: "invalid value"},
	{name: "value out of range", body: "a 1e400\n", err: "invalid value"},
	{name: "TYPE with two blanks", body: "# TYPE a  counter\na 1\n", err: "invalid metric type"},
	{name: "TYPE unknown", body: "# TYPE a info\na 1\n", err: "invalid metric type"},
	{name: "HELP without name", body: "# HELP \na 1\n", err: "expected a metric name"},
	{name: "HELP without text", body: "# HELP a\na 1\n", out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "other comments", body: "#HELP x\n# UNIT a b\n# EOF\na 1\n", out: "a{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	{name: "OpenMetrics exemplar", body: "a 1 # {t=\"x\"} 1\n", err: "invalid timestamp"},
	{name: "NUL in a label value", body: "a{x=\"\x00\"} 1\n", err: "NUL byte"},
	{name: "newline in quotes", body: "a{x=\"1\n\"} 1\n", err: "missing closing quote"},
}

func honorLabels(o *ScrapeOptions) { o.HonorLabels = true }

func rule(action, source, regex, target, repl string) config.RelabelConfig {
	c := config.RelabelConfig{Action: action, Separator: ";", Regex: config.DefaultRelabelRegex,
		Replacement: config.DefaultRelabelReplacement, TargetLabel: target}
	if source != "" {
		c.SourceLabels = []string{source}
	}
	if regex != "" {
		c.Regex = regex
	}
	if repl != "" || action == config.RelabelLabelMap {
		c.Replacement = repl
	}
	return c
}

func manyLabels(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "l%d=\"v\",", i)
	}
	return b.String()
}

// wantStats returns the stats expected, with the body's size as Bytes.
func (tc scrapeCase) wantStats() ScrapeStats {
	st := *tc.stats
	st.Bytes = int64(len(tc.body))
	return st
}

func (tc scrapeCase) parser(t testing.TB) *ScrapeParser {
	t.Helper()
	opt := ScrapeOptions{Target: labels.FromStrings("job", "j", "instance", "h:1"), HonorTimestamps: true}
	if tc.target != nil {
		opt.Target = tc.target
	}
	if tc.opt != nil {
		tc.opt(&opt)
	}
	if tc.rules != nil {
		r, err := relabel.Compile(tc.rules)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		opt.Rules = r
	}
	p, err := NewScrapeParser(opt)
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	return p
}

// TestScrapeParse runs the table, plain and a byte at a time: what is
// written, what is counted and why a scrape fails. Every output is a body
// Check accepts, and a failed scrape leaves dst as it was.
func TestScrapeParse(t *testing.T) {
	for _, tc := range scrapeCases {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.body)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			prefix := []byte("kept 1\n")
			out, st, err := tc.parser(t).Parse(r, testStamp, prefix)
			got := strings.ReplaceAll(string(out[len(prefix):]), fmt.Sprint(testStamp), "NOW")
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("%s: error %v; want one with %q", tc.name, err, tc.err)
			case tc.err != "" && string(out) != string(prefix):
				t.Errorf("%s: a failed scrape wrote %q", tc.name, out)
			case tc.err == "" && got != tc.out:
				t.Errorf("%s: wrote\n%s\nwant\n%s", tc.name, got, tc.out)
			case tc.stats != nil && st != tc.wantStats():
				t.Errorf("%s: stats %+v; want %+v", tc.name, st, tc.wantStats())
			}
			if n, cerr := Check(strings.NewReader(string(out)), DefaultLimits()); cerr != nil || n != st.Written+1 && err == nil {
				t.Errorf("%s: Check of the output: %d samples, %v", tc.name, n, cerr)
			}
		}
	}
}

// TestScrapeSeriesAdded checks scrape_series_added over scrapes: series
// not known from the last scrapes, as Prometheus' scrape cache knows them
// (those of the last successful scrape, and those a failed one appended
// before it failed).
func TestScrapeSeriesAdded(t *testing.T) {
	p := scrapeCase{name: "added"}.parser(t)
	steps := []struct {
		body  string
		added int
		fail  bool
	}{
		{"a 1\nb 1\n", 2, false},
		{"a 1\nb 1\n", 0, false},
		{"a 1\nc 1\n", 1, false},
		{"a 1\nd 1\nbad\n", 1, true},
		{"a 1\nc 1\nd 1\ne 1\n", 1, false},
		{"a 1\nb 1\n", 1, false},
	}
	for i, s := range steps {
		_, st, err := p.Parse(strings.NewReader(s.body), testStamp, nil)
		if (err != nil) != s.fail || st.SeriesAdded != s.added {
			t.Fatalf("scrape %d: %d added, %v; want %d, failing %v", i, st.SeriesAdded, err, s.added, s.fail)
		}
	}
}

// TestScrapeReadError checks that a reader's error fails the scrape with
// a ReadError and no samples counted, as Prometheus, which reads the
// whole body before parsing, reports it.
func TestScrapeReadError(t *testing.T) {
	p := scrapeCase{name: "read"}.parser(t)
	cut := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("a 1\nb 2\n"), iotest.ErrReader(cut))
	out, st, err := p.Parse(r, testStamp, nil)
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, cut) || len(out) != 0 || st.Scraped != 0 || st.Bytes != 8 {
		t.Fatalf("Parse = %q, %+v, %v; want a ReadError wrapping %v, nothing written, 8 bytes read", out, st, err, cut)
	}
}

// TestScrapeReport checks the series a scrape adds about itself.
func TestScrapeReport(t *testing.T) {
	p := scrapeCase{name: "report", target: labels.FromStrings("instance", "h:1", "job", "j", "zone", "a\"b")}.parser(t)
	got := string(p.AppendReport(nil, testStamp, ReportSeries{Up: false, Duration: 1500 * 1e6,
		Stats: ScrapeStats{Scraped: 3, PostRelabel: 2, SeriesAdded: 1}}))
	want := `up{instance="h:1",job="j",zone="a\"b"} 0 1700000000000
scrape_duration_seconds{instance="h:1",job="j",zone="a\"b"} 1.5 1700000000000
scrape_samples_scraped{instance="h:1",job="j",zone="a\"b"} 3 1700000000000
scrape_samples_post_metric_relabeling{instance="h:1",job="j",zone="a\"b"} 2 1700000000000
scrape_series_added{instance="h:1",job="j",zone="a\"b"} 1 1700000000000
`
	if got != want {
		t.Fatalf("AppendReport =\n%s\nwant\n%s", got, want)
	}
}

// TestScrapeTargetChecks checks NewScrapeParser's refusals.
func TestScrapeTargetChecks(t *testing.T) {
	for _, ls := range []labels.Labels{
		{{Name: "b", Value: "1"}, {Name: "a", Value: "1"}},
		{{Name: "__address__", Value: "x"}},
		{{Name: "a", Value: ""}},
		{{Name: "a-b", Value: "1"}},
	} {
		if _, err := NewScrapeParser(ScrapeOptions{Target: ls}); err == nil {
			t.Errorf("NewScrapeParser took target labels %v", ls)
		}
	}
}

// TestScrapeBuiltCache checks that a series relabeled in one scrape is
// written alike from the cache in the next ones, as long as what decides
// its labels (the TYPE in force) is the same, and that series no longer
// met are forgotten.
func TestScrapeBuiltCache(t *testing.T) {
	p := scrapeCase{name: "cache", rules: []config.RelabelConfig{
		rule(config.RelabelDrop, "__name__", "gone", "", ""),
		rule(config.RelabelReplace, "le", "(.+)", "bound", "$1"),
	}}.parser(t)
	steps := []struct{ body, out string }{
		{"# TYPE h histogram\nh_bucket{le=\"1\"} 1\ngone 1\n", "h_bucket{bound=\"1.0\",instance=\"h:1\",job=\"j\",le=\"1.0\"} 1 NOW\n"},
		{"# TYPE h histogram\nh_bucket{le=\"1\"} 2\ngone 1\n", "h_bucket{bound=\"1.0\",instance=\"h:1\",job=\"j\",le=\"1.0\"} 2 NOW\n"},
		{"h_bucket{le=\"1\"} 3\n", "h_bucket{bound=\"1\",instance=\"h:1\",job=\"j\",le=\"1\"} 3 NOW\n"},
		{"other 1\n", "other{instance=\"h:1\",job=\"j\"} 1 NOW\n"},
	}
	for i, s := range steps {
		out, _, err := p.Parse(strings.NewReader(s.body), testStamp, nil)
		if got := strings.ReplaceAll(string(out), fmt.Sprint(testStamp), "NOW"); err != nil || got != s.out {
			t.Fatalf("scrape %d: %q, %v; want %q", i, got, err, s.out)
		}
	}
	if len(p.built) != 1 {
		t.Fatalf("%d series cached after a scrape of one", len(p.built))
	}
}
