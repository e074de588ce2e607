package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Relabeling actions, as Prometheus names them.
const (
	RelabelReplace   = "replace"
	RelabelKeep      = "keep"
	RelabelDrop      = "drop"
	RelabelKeepEqual = "keepequal"
	RelabelDropEqual = "dropequal"
	RelabelHashMod   = "hashmod"
	RelabelLabelMap  = "labelmap"
	RelabelLabelDrop = "labeldrop"
	RelabelLabelKeep = "labelkeep"
	RelabelLowercase = "lowercase"
	RelabelUppercase = "uppercase"
)

// RelabelActions lists every relabeling action accepted, in the order of
// Prometheus' documentation.
var RelabelActions = []string{
	RelabelReplace, RelabelLowercase, RelabelUppercase, RelabelKeep, RelabelDrop,
	RelabelKeepEqual, RelabelDropEqual, RelabelHashMod, RelabelLabelMap,
	RelabelLabelDrop, RelabelLabelKeep,
}

// Relabeling defaults, as Prometheus': the regex matches any value and the
// replacement is its first group.
const (
	DefaultRelabelSeparator   = ";"
	DefaultRelabelRegex       = "(.*)"
	DefaultRelabelReplacement = "$1"
)

// RelabelConfig is one relabeling rule of relabel_configs or
// metric_relabel_configs, with Prometheus' keys, defaults and semantics
// (package prom/relabel applies them). Label names are Prometheus' legacy
// ones ([a-zA-Z_][a-zA-Z0-9_]*), as in Prometheus with
// metric_name_validation_scheme: legacy.
type RelabelConfig struct {
	// SourceLabels are the labels whose values, joined by Separator, the
	// rule reads. Default none.
	SourceLabels []string `yaml:"source_labels,flow,omitempty"`
	// Separator joins the values of SourceLabels. Default ";".
	Separator string `yaml:"separator"`
	// TargetLabel is the label the rule writes (replace, hashmod, lowercase,
	// uppercase) or compares with (keepequal, dropequal). replace may use
	// the regex's groups in it ($1, ${name}). Default none.
	TargetLabel string `yaml:"target_label,omitempty"`
	// Regex is matched against the joined value (or, for labelmap,
	// labeldrop and labelkeep, against each label name), anchored at both
	// ends, in Go's RE2 syntax. Default "(.*)".
	Regex string `yaml:"regex"`
	// Modulus is hashmod's modulus. Required, positive, for hashmod.
	Modulus uint64 `yaml:"modulus,omitempty"`
	// Replacement is what replace writes and labelmap names labels, with
	// the regex's groups expanded ($1, ${1}, ${name}, $$ for a dollar).
	// Default "$1".
	Replacement string `yaml:"replacement"`
	// Action is one of RelabelActions, case-insensitive. Default replace.
	Action string `yaml:"action"`
}

// DefaultRelabelConfig returns a rule with every default: replace the
// target label with the whole joined value.
func DefaultRelabelConfig() RelabelConfig {
	return RelabelConfig{
		Separator:   DefaultRelabelSeparator,
		Regex:       DefaultRelabelRegex,
		Replacement: DefaultRelabelReplacement,
		Action:      RelabelReplace,
	}
}

// UnmarshalYAML implements yaml.Unmarshaler: the keys not written keep
// their defaults, as in Prometheus. Unknown keys are checked by the
// document's strict decoding (checkScrapeKeys), which names their path.
func (c *RelabelConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain RelabelConfig
	d := plain(DefaultRelabelConfig())
	if err := n.Decode(&d); err != nil {
		return err
	}
	d.Action = strings.ToLower(d.Action)
	*c = RelabelConfig(d)
	return nil
}

// relabelTargetLegacy is Prometheus' pattern for a target_label (replace)
// or replacement (labelmap) that uses the regex's groups: legacy name
// characters and $name or ${name} references.
var relabelTargetLegacy = lazyRegexp(`^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`)

// Validate checks c as Prometheus' relabel.Config.Validate does with the
// legacy name scheme, and that Regex compiles; key, such as
// "scrape_configs[0].relabel_configs[1]", prefixes errors.
func (c RelabelConfig) Validate(key string) error {
	if !isRelabelAction(c.Action) {
		return fmt.Errorf("%s.action: %q is not accepted; want one of %s", key, c.Action, strings.Join(RelabelActions, ", "))
	}
	for i, s := range c.SourceLabels {
		if !validLabelName(s) {
			return fmt.Errorf("%s.source_labels[%d]: %q is not a label name; want [a-zA-Z_][a-zA-Z0-9_]*", key, i, s)
		}
	}
	if _, err := CompileRelabelRegex(c.Regex); err != nil {
		return fmt.Errorf("%s.regex: %q does not compile: %w", key, c.Regex, err)
	}
	return c.validateFields(key)
}

// validateFields checks the keys each action needs or refuses.
func (c RelabelConfig) validateFields(key string) error {
	a, t := c.Action, c.TargetLabel
	writesTarget := a == RelabelReplace || a == RelabelHashMod || a == RelabelLowercase || a == RelabelUppercase
	equal := a == RelabelKeepEqual || a == RelabelDropEqual
	switch {
	case a == RelabelHashMod && c.Modulus == 0:
		return fmt.Errorf("%s.modulus: missing; hashmod needs a positive modulus", key)
	case (writesTarget || equal) && t == "":
		return fmt.Errorf("%s.target_label: missing; %s needs a target_label", key, a)
	case a == RelabelReplace && !strings.Contains(t, "$") && !validLabelName(t),
		a == RelabelReplace && strings.Contains(t, "$") && !relabelTargetLegacy().MatchString(t),
		a != RelabelReplace && (writesTarget || equal) && !validLabelName(t):
		want := "a label name [a-zA-Z_][a-zA-Z0-9_]*"
		if a == RelabelReplace {
			want += " that may use the regex's groups ($1, ${name})"
		}
		return fmt.Errorf("%s.target_label: %q is not accepted for %s; want %s", key, t, a, want)
	case (a == RelabelLowercase || a == RelabelUppercase || equal) && c.Replacement != DefaultRelabelReplacement:
		return fmt.Errorf("%s.replacement: not accepted for %s, which writes no replacement", key, a)
	case a == RelabelLabelMap && !relabelTargetLegacy().MatchString(c.Replacement):
		return fmt.Errorf("%s.replacement: %q is not accepted for labelmap; want a label name that may use the regex's groups ($1, ${name})", key, c.Replacement)
	case equal && (c.Regex != DefaultRelabelRegex || c.Modulus != 0 || c.Separator != DefaultRelabelSeparator):
		return fmt.Errorf("%s: %s takes only source_labels and target_label, no regex, modulus, separator or replacement", key, a)
	case (a == RelabelLabelDrop || a == RelabelLabelKeep) &&
		(c.SourceLabels != nil || t != "" || c.Modulus != 0 || c.Separator != DefaultRelabelSeparator || c.Replacement != DefaultRelabelReplacement):
		return fmt.Errorf("%s: %s takes only regex, no source_labels, target_label, modulus, separator or replacement", key, a)
	}
	return nil
}

func isRelabelAction(a string) bool {
	for _, x := range RelabelActions {
		if a == x {
			return true
		}
	}
	return false
}

// CompileRelabelRegex compiles a relabeling regex as Prometheus does:
// anchored at both ends, with . matching newlines.
func CompileRelabelRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?s:" + re + ")$")
}

// validLabelName reports whether name is a legacy Prometheus label name,
// [a-zA-Z_][a-zA-Z0-9_]* (prom/labels.IsValidName, which config cannot
// import).
func validLabelName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
