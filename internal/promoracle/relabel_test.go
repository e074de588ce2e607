package promoracle

import (
	"fmt"
	"slices"
	"testing"

	plabels "github.com/prometheus/prometheus/model/labels"
	prelabel "github.com/prometheus/prometheus/model/relabel"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/relabeltest"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// Every case of the shared table, through Prometheus and through
// prom/relabel: both must give the same answer, and it must be the one the
// table states (so that the table, which prom/relabel's own tests use,
// says what Prometheus does).
func TestCasesAgainstPrometheus(t *testing.T) {
	for _, c := range relabeltest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var prom, ours result
			pcfgs, err := promParse(c.Rules)
			if err != nil {
				prom.invalid = true
			} else {
				prom = promRun(pcfgs, c.Input)
			}
			cfgs, err := config.ParseRelabelConfigs([]byte(c.Rules))
			if err != nil {
				ours.invalid = true
			} else {
				ours = ourRun(cfgs, c.Input)
			}
			want := result{invalid: c.Invalid, keep: !c.Invalid && !c.Drop}
			if want.keep {
				want.labels = c.Want
				if want.labels == nil {
					want.labels = []string{}
				}
			}
			compare(t, c.Rules, c.Input, prom, ours)
			if !equal(prom, want) {
				t.Errorf("the table says %+v; Prometheus %+v", want, prom)
			}
		})
	}
}

func compare(t *testing.T, rules string, input []string, prom, ours result) {
	t.Helper()
	if !equal(prom, ours) {
		t.Fatalf("rules %s on %q:\nPrometheus %s\nprocfleet  %s", rules, input, show(prom), show(ours))
	}
}

func equal(a, b result) bool {
	return a.invalid == b.invalid && a.keep == b.keep && slices.Equal(a.labels, b.labels)
}

func show(r result) string {
	switch {
	case r.invalid:
		return "rules refused"
	case !r.keep:
		return "dropped"
	}
	return fmt.Sprintf("%q", r.labels)
}

// The honor_labels cases through Prometheus' merge (mutateSampleLabels,
// copied in mutate_test.go and checked there to be Prometheus' text) and
// through relabel.MergeTarget.
func TestHonorCasesAgainstPrometheus(t *testing.T) {
	for _, c := range relabeltest.HonorCases {
		t.Run(c.Name, func(t *testing.T) {
			rules := c.Rules
			if rules == "" {
				rules = "[]"
			}
			pcfgs, err := promParse(rules)
			if err != nil {
				t.Fatal(err)
			}
			plset := mutateSampleLabels(plabels.FromStrings(c.Scraped...), &target{labels: plabels.FromStrings(c.Target...)}, c.Honor, pcfgs)
			prom := result{keep: !plset.IsEmpty(), labels: promPairs(plset)}
			if !prom.keep {
				prom.labels = nil
			}

			cfgs, err := config.ParseRelabelConfigs([]byte(rules))
			if err != nil {
				t.Fatal(err)
			}
			rs, err := relabel.Compile(cfgs)
			if err != nil {
				t.Fatal(err)
			}
			b := labels.NewBuilder(labels.FromStrings(c.Scraped...))
			relabel.MergeTarget(b, labels.FromStrings(c.Target...), c.Honor)
			ours := result{keep: rs.Process(b)}
			if ours.keep {
				ours.labels = ourPairs(b.Labels(nil))
			}
			compare(t, rules, append(append([]string{"scraped:"}, c.Scraped...), append([]string{"target:"}, c.Target...)...), prom, ours)
			want := result{keep: !c.Drop, labels: c.Want}
			if !equal(prom, want) {
				t.Errorf("the table says %s; Prometheus %s", show(want), show(prom))
			}
		})
	}
}

type prelabelConfigs = []*prelabel.Config
