package promoracle

import (
	"github.com/prometheus/common/model"
	plabels "github.com/prometheus/prometheus/model/labels"
	prelabel "github.com/prometheus/prometheus/model/relabel"
	yaml "go.yaml.in/yaml/v2"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
	"github.com/procfleet/procfleet/prom/relabel"
)

// result is what one implementation made of a case.
type result struct {
	invalid bool
	keep    bool
	labels  []string // name/value pairs in name order, empty values kept
}

// promParse decodes YAML rules with Prometheus' own decoding (defaults
// included) and validates them with the legacy name scheme, as procfleet
// names labels.
func promParse(rules string) ([]*prelabel.Config, error) {
	var cfgs []*prelabel.Config
	if err := yaml.UnmarshalStrict([]byte(rules), &cfgs); err != nil {
		return nil, err
	}
	for _, c := range cfgs {
		if err := c.Validate(model.LegacyValidation); err != nil {
			return nil, err
		}
	}
	return cfgs, nil
}

// promConfig converts one of procfleet's rules into Prometheus' type, as
// Prometheus' YAML decoding would have made it.
func promConfig(c config.RelabelConfig) (*prelabel.Config, error) {
	p := &prelabel.Config{
		Separator: c.Separator, TargetLabel: c.TargetLabel, Modulus: c.Modulus,
		Replacement: c.Replacement, Action: prelabel.Action(c.Action),
		Regex: prelabel.DefaultRelabelConfig.Regex,
	}
	if c.SourceLabels != nil {
		p.SourceLabels = model.LabelNames{}
		for _, s := range c.SourceLabels {
			p.SourceLabels = append(p.SourceLabels, model.LabelName(s))
		}
	}
	if c.Regex != config.DefaultRelabelRegex {
		re, err := prelabel.NewRegexp(c.Regex)
		if err != nil {
			return nil, err
		}
		p.Regex = re
	}
	switch p.Action {
	case prelabel.Replace, prelabel.Keep, prelabel.Drop, prelabel.KeepEqual, prelabel.DropEqual, prelabel.HashMod,
		prelabel.LabelMap, prelabel.LabelDrop, prelabel.LabelKeep, prelabel.Lowercase, prelabel.Uppercase:
	default:
		return nil, errUnknownAction
	}
	return p, p.Validate(model.LegacyValidation)
}

type oracleError string

func (e oracleError) Error() string { return string(e) }

const errUnknownAction = oracleError("unknown action")

// promRun relabels input with Prometheus' model/relabel.
func promRun(cfgs []*prelabel.Config, input []string) result {
	lb := plabels.NewBuilder(plabels.FromStrings(input...))
	if !prelabel.ProcessBuilder(lb, cfgs...) {
		return result{}
	}
	return result{keep: true, labels: promPairs(lb.Labels())}
}

func promPairs(ls plabels.Labels) []string {
	out := []string{}
	ls.Range(func(l plabels.Label) { out = append(out, l.Name, l.Value) })
	return out
}

// ourRun relabels input with prom/relabel.
func ourRun(cfgs []config.RelabelConfig, input []string) result {
	rules, err := relabel.Compile(cfgs)
	if err != nil {
		return result{invalid: true}
	}
	out, keep := rules.Apply(labels.NewBuilder(nil), labels.FromStrings(input...), nil)
	if !keep {
		return result{}
	}
	return result{keep: true, labels: ourPairs(out)}
}

func ourPairs(ls labels.Labels) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.Name, l.Value)
	}
	return out
}
