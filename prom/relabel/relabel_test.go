package relabel

import (
	"testing"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/relabeltest"
	"github.com/procfleet/procfleet/prom/labels"
)

// pairs builds a label set from name/value pairs, keeping empty values.
func pairs(ss []string) labels.Labels { return labels.FromStrings(ss...) }

// run relabels c.Input with c.Rules and reports the result, whether it was
// kept, and the compile error.
func run(c relabeltest.Case) (labels.Labels, bool, error) {
	cfgs, err := config.ParseRelabelConfigs([]byte(c.Rules))
	if err != nil {
		return nil, false, err
	}
	rules, err := Compile(cfgs)
	if err != nil {
		return nil, false, err
	}
	out, keep := rules.Apply(labels.NewBuilder(nil), pairs(c.Input), nil)
	return out, keep, nil
}

// The shared table (internal/relabeltest), which internal/promoracle also
// runs through Prometheus.
func TestCases(t *testing.T) {
	for _, c := range relabeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got, keep, err := run(c)
			switch {
			case c.Invalid:
				if err == nil {
					t.Fatalf("rules accepted; want them refused: %s", c.Rules)
				}
			case err != nil:
				t.Fatal(err)
			case c.Drop:
				if keep {
					t.Fatalf("kept %v; want dropped", got)
				}
			case !keep:
				t.Fatalf("dropped; want %v", pairs(c.Want))
			case !got.Equal(pairs(c.Want)):
				t.Fatalf("got  %v\nwant %v", got, pairs(c.Want))
			}
		})
	}
}

func TestHonorCases(t *testing.T) {
	for _, c := range relabeltest.HonorCases {
		t.Run(c.Name, func(t *testing.T) {
			got, keep, err := merge(c)
			switch {
			case err != nil:
				t.Fatal(err)
			case c.Drop:
				if keep {
					t.Fatalf("kept %v; want dropped", got)
				}
			case !keep || !got.Equal(pairs(c.Want)):
				t.Fatalf("got  %v (kept %v)\nwant %v", got, keep, pairs(c.Want))
			}
		})
	}
}

func merge(c relabeltest.HonorCase) (labels.Labels, bool, error) {
	var cfgs []config.RelabelConfig
	if c.Rules != "" {
		var err error
		if cfgs, err = config.ParseRelabelConfigs([]byte(c.Rules)); err != nil {
			return nil, false, err
		}
	}
	rules, err := Compile(cfgs)
	if err != nil {
		return nil, false, err
	}
	b := labels.NewBuilder(pairs(c.Scraped))
	MergeTarget(b, pairs(c.Target), c.Honor)
	if !rules.Process(b) {
		return nil, false, nil
	}
	return b.Labels(nil), true, nil
}

// A Builder reused across label sets carries nothing over.
func TestBuilderReuse(t *testing.T) {
	cfgs, err := config.ParseRelabelConfigs([]byte(`[{source_labels: [a], target_label: b}, {action: labeldrop, regex: c}]`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := Compile(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	b := labels.NewBuilder(nil)
	var dst labels.Labels
	for i, in := range []labels.Labels{
		labels.FromStrings("a", "1", "c", "x"),
		labels.FromStrings("z", "2"),
		labels.FromStrings("a", "3"),
	} {
		want := []labels.Labels{
			labels.FromStrings("a", "1", "b", "1"),
			labels.FromStrings("z", "2"),
			labels.FromStrings("a", "3", "b", "3"),
		}[i]
		var keep bool
		if dst, keep = rules.Apply(b, in, dst); !keep || !dst.Equal(want) {
			t.Fatalf("set %d: %v (kept %v); want %v", i, dst, keep, want)
		}
	}
}

// labels.IsValidName and the config package's check agree: config cannot
// import prom/labels.
func TestLabelNameChecksAgree(t *testing.T) {
	for _, n := range []string{"", "a", "_", "A9", "9a", "a-b", "a.b", "ä", "__name__", "a:b", "a b"} {
		_, err := Compile([]config.RelabelConfig{{SourceLabels: []string{"x"}, Separator: ";", Regex: "(.*)", Replacement: "$1", Action: "replace", TargetLabel: n}})
		if (err == nil) != labels.IsValidName(n) {
			t.Errorf("%q: IsValidName %v, config accepts %v", n, labels.IsValidName(n), err == nil)
		}
	}
}
