package promoracle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/config"
)

// Pools the random label sets and rules draw from: few names, so that
// rules meet the labels they name and labelmap's clashes happen.
var (
	poolNames   = []string{"a", "b", "c", "a_x", "b_x", "__meta_a_x", "__meta_b_y", "job", "exported_a", "__address__", "A"}
	poolValues  = []string{"", "1", "x", "db-1:9100", "a;b", "ÄbC", "\xff\xfe", "a\nb", "__meta_a_x", "$1"}
	poolRegexes = []string{"(.*)", "", ".*", "(.+)", "a|b", "(a|b)_(.*)", "__meta_(.+)", "__meta_[ab]_(.+)", "(?P<n>.)(.*)",
		"([^:]+):(\\d+)", "x", "(.)", "[", "(x*)(.*)", "(?i)ÄBC", "\\d+", ")|("}
	poolTargets      = []string{"a", "b", "t", "a_x", "$1", "${1}_x", "${n}", "x_$2", "1x", "", "__meta_a_x", "exported_a"}
	poolReplacements = []string{"$1", "${1}", "$2-$1", "", "x", "${n}", "$1x", "$$", "b", "${2}_${1}"}
	poolSeparators   = []string{";", "", ",", "_"}
	poolModuli       = []uint64{0, 1, 7, 1 << 40}
)

// randomCase draws a label set and one to four rules from r; regex,
// replacement and value, when not empty, join the pools (the fuzzer's
// strings).
func randomCase(r *rand.Rand, regex, replacement, value string) ([]config.RelabelConfig, []string) {
	pick := func(pool []string, extra string) string {
		if extra != "" && r.IntN(4) == 0 {
			return extra
		}
		return pool[r.IntN(len(pool))]
	}
	var input []string
	for _, i := range r.Perm(len(poolNames))[:r.IntN(7)] {
		input = append(input, poolNames[i], pick(poolValues, value))
	}
	cfgs := make([]config.RelabelConfig, 1+r.IntN(4))
	for i := range cfgs {
		c := config.DefaultRelabelConfig()
		c.Action = config.RelabelActions[r.IntN(len(config.RelabelActions))]
		sources := func() {
			for range r.IntN(4) {
				c.SourceLabels = append(c.SourceLabels, poolNames[r.IntN(len(poolNames))])
			}
			c.Separator = poolSeparators[r.IntN(len(poolSeparators))]
		}
		name := func() string { return poolNames[r.IntN(len(poolNames))] }
		switch wild := r.IntN(8) == 0; {
		case wild: // any field, for any action: mostly refused, as it should be
			sources()
			c.Regex, c.Replacement = pick(poolRegexes, regex), pick(poolReplacements, replacement)
			c.TargetLabel, c.Modulus = poolTargets[r.IntN(len(poolTargets))], poolModuli[r.IntN(len(poolModuli))]
		case c.Action == config.RelabelReplace:
			sources()
			c.Regex, c.Replacement = pick(poolRegexes, regex), pick(poolReplacements, replacement)
			c.TargetLabel = poolTargets[r.IntN(len(poolTargets))]
		case c.Action == config.RelabelKeep, c.Action == config.RelabelDrop:
			sources()
			c.Regex = pick(poolRegexes, regex)
		case c.Action == config.RelabelHashMod:
			sources()
			c.TargetLabel, c.Modulus = name(), poolModuli[1+r.IntN(len(poolModuli)-1)]
		case c.Action == config.RelabelLabelMap:
			c.Regex, c.Replacement = pick(poolRegexes, regex), pick(poolReplacements, replacement)
		case c.Action == config.RelabelLabelDrop, c.Action == config.RelabelLabelKeep:
			c.Regex = pick(poolRegexes, regex)
		default: // lowercase, uppercase, keepequal, dropequal
			sources()
			if c.Action == config.RelabelKeepEqual || c.Action == config.RelabelDropEqual {
				c.Separator = ";"
			}
			c.TargetLabel = name()
		}
		cfgs[i] = c
	}
	return cfgs, input
}

// check runs cfgs on input through both and fails on any difference:
// whether the rules are valid, whether the set is kept, and the labels.
func check(t *testing.T, cfgs []config.RelabelConfig, input []string) result {
	t.Helper()
	var prom result
	var pcfgs = make(prelabelConfigs, 0, len(cfgs))
	for _, c := range cfgs {
		p, err := promConfig(c)
		if err != nil {
			prom.invalid = true
			break
		}
		pcfgs = append(pcfgs, p)
	}
	if !prom.invalid {
		prom = promRun(pcfgs, input)
	}
	ours := ourRun(cfgs, input)
	if !equal(prom, ours) {
		t.Fatalf("rules %s on %q:\nPrometheus %s\nprocfleet  %s", describe(cfgs), input, show(prom), show(ours))
	}
	return ours
}

func describe(cfgs []config.RelabelConfig) string {
	var b strings.Builder
	for _, c := range cfgs {
		fmt.Fprintf(&b, "\n  {action: %s, source_labels: %q, separator: %q, regex: %q, target_label: %q, replacement: %q, modulus: %d}",
			c.Action, c.SourceLabels, c.Separator, c.Regex, c.TargetLabel, c.Replacement, c.Modulus)
	}
	return b.String()
}

// Random label sets and rules, through both: a fixed sequence, so that
// every run of make test covers the same ground.
func TestRandomAgainstPrometheus(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(13, 13))
	var invalid, dropped, changed int
	for range n {
		cfgs, input := randomCase(r, "", "", "")
		res := check(t, cfgs, input)
		switch {
		case res.invalid:
			invalid++
		case !res.keep:
			dropped++
		case fmt.Sprint(res.labels) != fmt.Sprint(input):
			changed++
		}
	}
	// The draw must exercise every outcome, not only refusals.
	t.Logf("%d cases: %d rule sets refused, %d label sets dropped, %d changed", n, invalid, dropped, changed)
	if invalid > n/2 || dropped < n/20 || changed < n/5 {
		t.Fatalf("the draw is lopsided: %d refused, %d dropped, %d changed of %d", invalid, dropped, changed, n)
	}
}

// FuzzRelabel draws cases from the seed and mixes the fuzzer's strings
// into the regexes, replacements and values. Run it with
// go test -fuzz FuzzRelabel (internal/promoracle).
func FuzzRelabel(f *testing.F) {
	f.Add(uint64(1), "(.*)", "$1", "x")
	f.Add(uint64(2), "(a|b)_(.*)", "${2}_${1}", "a_b")
	f.Add(uint64(3), "(?P<n>[^:]+):.*", "${n}", "db-1:9100")
	f.Add(uint64(4), "", "", "")
	f.Add(uint64(5), ".", "$1x", "\xff")
	f.Add(uint64(6), "(?i)Ä(.)", "$$${1}", "äbc")
	f.Fuzz(func(t *testing.T, seed uint64, regex, replacement, value string) {
		r := rand.New(rand.NewPCG(seed, seed>>32))
		for range 8 {
			cfgs, input := randomCase(r, regex, replacement, value)
			check(t, cfgs, input)
		}
	})
}
