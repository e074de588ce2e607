package promoracle

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	yaml "go.yaml.in/yaml/v2"

	pfdiscovery "github.com/procfleet/procfleet/cluster/discovery"
	"github.com/procfleet/procfleet/prom/labels"
)

var groupMeta = labels.Label{Name: "__meta_url", Value: "http://sd/"}

// legacyNames makes Prometheus validate label names as procfleet does
// (metric_name_validation_scheme: legacy) for the test: LabelName's
// decoding reads this variable, Prometheus' escape hatch for the legacy
// scheme.
func legacyNames(t testing.TB) {
	//lint:ignore SA1019 the variable LabelName.UnmarshalJSON and UnmarshalYAML read
	old := model.NameValidationScheme
	//lint:ignore SA1019 as above
	model.NameValidationScheme = model.LegacyValidation
	//lint:ignore SA1019 as above
	t.Cleanup(func() { model.NameValidationScheme = old })
}

// promGroups decodes a list as Prometheus' file and http discovery do:
// json.Unmarshal or yaml.UnmarshalStrict into []*targetgroup.Group, a nil
// group refused, the meta label set on each group.
func promGroups(in string, f pfdiscovery.Format) (string, error) {
	var tgs []*targetgroup.Group
	var err error
	if f == pfdiscovery.JSON {
		err = json.Unmarshal([]byte(in), &tgs)
	} else {
		err = yaml.UnmarshalStrict([]byte(in), &tgs)
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, tg := range tgs {
		if tg == nil {
			return "", fmt.Errorf("nil target group item found")
		}
		if len(tg.Targets) == 0 {
			continue
		}
		var ls []string
		for k, v := range tg.Labels {
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		// Prometheus sets the meta label over one of the same name.
		ls = slices.DeleteFunc(ls, func(s string) bool { return strings.HasPrefix(s, groupMeta.Name+"=") })
		ls = append(ls, fmt.Sprintf("%s=%q", groupMeta.Name, groupMeta.Value))
		slices.Sort(ls)
		b.WriteString(strings.Join(ls, " ") + ":")
		for _, t := range tg.Targets {
			fmt.Fprintf(&b, " %q", t[model.AddressLabel])
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func ourGroups(in string, f pfdiscovery.Format) (string, error) {
	gs, err := pfdiscovery.ParseGroups(strings.NewReader(in), f, groupMeta, pfdiscovery.DefaultConfig())
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, g := range gs {
		var ls []string
		for _, l := range g.Labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		slices.Sort(ls)
		b.WriteString(strings.Join(ls, " ") + ":")
		for _, t := range g.Targets {
			fmt.Fprintf(&b, " %q", t.Get("__address__"))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func checkGroups(t *testing.T, in string, f pfdiscovery.Format) {
	t.Helper()
	prom, perr := promGroups(in, f)
	ours, err := ourGroups(in, f)
	if (err == nil) != (perr == nil) || ours != prom {
		t.Fatalf("%q:\nprocfleet  %v\n%s\nPrometheus %v\n%s", in, err, ours, perr, prom)
	}
}

// ParseGroups reads JSON and YAML lists of target groups as Prometheus'
// file_sd and http_sd do: the same groups from the same bytes, and an
// error where Prometheus has one.
func TestGroupsAgainstPrometheus(t *testing.T) {
	legacyNames(t)
	for _, in := range []string{
		`[{"targets": ["a:1", "é\u00e9\ud800", "\xff"], "labels": {"a": "1", "__meta_url": "x"}}]`,
		`[{"Targets": ["a"], "targets": [null, "b"]}]`, `[{"targets": ["a"], "labels": {"a.b": "1"}}]`, `[null]`, `null`, ``, `[] x`,
	} {
		checkGroups(t, in, pfdiscovery.JSON)
	}
	for _, in := range []string{
		"- targets: [a:1, 'b', \"c\", 1, 1.5, true, yes, ~, null]\n  labels: {a: 1, b: yes, c: ~, d: '', __meta_url: x}\n",
		"", "---\n", "- targets: [a]\n  targets: [b]\n", "- targets: [a]\n  extra: 1\n", "-\n", "- {}\n", "a: b\n",
		"- targets: &t [a, b]\n- targets: *t\n  labels: {x: y}\n", "- labels: {a.b: c}\n  targets: [a]\n",
		"- targets:\n  - a\n  - |\n    multi\n    line\n", "- targets: !!seq [a]\n", "- targets: [!!binary YWJj]\n",
		"- <<: {targets: [m]}\n  labels: {a: b}\n", "- targets: [[a]]\n", "- labels: {a: [b]}\n  targets: [x]\n",
	} {
		checkGroups(t, in, pfdiscovery.YAML)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 20_000 {
		checkGroups(t, randomGroups(r, pfdiscovery.JSON), pfdiscovery.JSON)
		checkGroups(t, randomGroups(r, pfdiscovery.YAML), pfdiscovery.YAML)
	}
}

// randomGroups writes a list of target groups, mostly well formed, with
// the scalars each format has.
func randomGroups(r *rand.Rand, f pfdiscovery.Format) string {
	var scalars, keys, names []string
	if f == pfdiscovery.JSON {
		scalars = []string{`"a:1"`, `"b"`, `null`, `"é\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, "\"\xff\"", `""`, `1`, `true`, `"x\"y"`}
		keys = []string{`"targets"`, `"labels"`, `"Targets"`, `"LABELS"`, `"other"`}
		names = []string{`"env"`, `"job"`, `"__address__"`, `"__meta_url"`, `"a.b"`, `"Env"`, `""`}
	} else {
		scalars = []string{"a:1", "'b'", "\"c\"", "~", "null", "1", "1.5", "true", "yes", "''", "é", "\"\\u00e9\"", "[x]", "{x: y}", "&a q", "*a"}
		keys = []string{"targets", "labels", "Targets", "other"}
		names = []string{"env", "job", "__address__", "__meta_url", "a.b", "'quoted'", "1"}
	}
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	var b strings.Builder
	b.WriteString("[")
	for g := range r.IntN(4) {
		if g > 0 {
			b.WriteString(", ")
		}
		if r.IntN(20) == 0 {
			b.WriteString("null")
			continue
		}
		b.WriteString("{")
		for k := range r.IntN(4) {
			if k > 0 {
				b.WriteString(", ")
			}
			key := pick(keys)
			b.WriteString(key + ": ")
			switch {
			case strings.Contains(strings.ToLower(key), "labels"):
				b.WriteString("{")
				for i := range r.IntN(4) {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(pick(names) + ": " + pick(scalars))
				}
				b.WriteString("}")
			case r.IntN(10) == 0:
				b.WriteString(pick(scalars))
			default:
				b.WriteString("[")
				for i := range r.IntN(4) {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString(pick(scalars))
				}
				b.WriteString("]")
			}
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return b.String()
}

func FuzzGroupsJSON(f *testing.F) {
	f.Add(`[{"targets": ["a:1"], "labels": {"a": "\u00e9"}}]`)
	f.Fuzz(func(t *testing.T, in string) {
		legacyNames(t)
		checkGroups(t, in, pfdiscovery.JSON)
	})
}

func FuzzGroupsYAML(f *testing.F) {
	f.Add("- targets: [a:1]\n  labels: {a: b}\n")
	f.Fuzz(func(t *testing.T, in string) {
		legacyNames(t)
		checkGroups(t, in, pfdiscovery.YAML)
	})
}
