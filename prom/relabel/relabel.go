// Package relabel applies Prometheus relabeling rules (relabel_configs,
// metric_relabel_configs) to label sets, with Prometheus' semantics: every
// action, its defaults, fully anchored regexes, $1/${1}/${name} expansion,
// hashmod by md5, and empty values meaning no label. It also merges a
// target's labels into a scraped sample's as honor_labels says
// (MergeTarget). It is part of the prom tree (see package prom); the
// nested module internal/promoracle checks it against Prometheus' own
// model/relabel.
//
// Rules are compiled once (Compile) and applied many times through a
// labels.Builder, one per goroutine, allocating only for the values they
// build.
package relabel

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

type action uint8

const (
	actReplace action = iota
	actKeep
	actDrop
	actKeepEqual
	actDropEqual
	actHashMod
	actLabelMap
	actLabelDrop
	actLabelKeep
	actLowercase
	actUppercase
)

var actions = map[string]action{
	config.RelabelReplace: actReplace, config.RelabelKeep: actKeep, config.RelabelDrop: actDrop,
	config.RelabelKeepEqual: actKeepEqual, config.RelabelDropEqual: actDropEqual,
	config.RelabelHashMod: actHashMod, config.RelabelLabelMap: actLabelMap,
	config.RelabelLabelDrop: actLabelDrop, config.RelabelLabelKeep: actLabelKeep,
	config.RelabelLowercase: actLowercase, config.RelabelUppercase: actUppercase,
}

// rule is one compiled RelabelConfig.
type rule struct {
	act     action
	sources []string
	sep     string
	re      *regexp.Regexp
	// matchAll: the regex is the default (.*), which matches any value
	// whole, so replace needs no regex run.
	matchAll bool
	// whole: the regex, as written, parses on its own, so the anchored
	// form matches a string whole or not at all (")|(" does not: it makes
	// "^(?s:)|()$").
	whole        bool
	target       string
	targetHasVar bool
	repl         string
	replHasVar   bool
	modulus      uint64
}

// Rules are compiled relabeling rules. Rules are immutable: safe for
// concurrent use by any number of goroutines, each with its own Builder.
type Rules struct {
	rules []rule
}

// Compile validates and compiles cfgs, in order. An empty cfgs gives Rules
// that keep every label set unchanged.
func Compile(cfgs []config.RelabelConfig) (*Rules, error) {
	r := &Rules{rules: make([]rule, 0, len(cfgs))}
	for i, c := range cfgs {
		c.Action = strings.ToLower(c.Action)
		if err := c.Validate(fmt.Sprintf("[%d]", i)); err != nil {
			return nil, fmt.Errorf("cannot compile relabeling rule %w", err)
		}
		re, err := config.CompileRelabelRegex(c.Regex)
		if err != nil {
			return nil, fmt.Errorf("cannot compile relabeling rule [%d]: %w", i, err)
		}
		r.rules = append(r.rules, rule{
			act: actions[c.Action], sources: c.SourceLabels, sep: c.Separator,
			re: re, matchAll: c.Regex == config.DefaultRelabelRegex, whole: parses(c.Regex),
			target: c.TargetLabel, targetHasVar: strings.Contains(c.TargetLabel, "$"),
			repl: c.Replacement, replHasVar: strings.Contains(c.Replacement, "$"),
			modulus: c.Modulus,
		})
	}
	return r, nil
}

// Len returns the number of rules.
func (r *Rules) Len() int { return len(r.rules) }

// Process applies the rules to the labels of b, in order, and reports
// whether the label set is kept; a rule that drops it stops the others.
// Like Prometheus, Process leaves b as it was at the rule that dropped.
func (r *Rules) Process(b *labels.Builder) (keep bool) {
	for i := range r.rules {
		if !r.rules[i].apply(b) {
			return false
		}
	}
	return true
}

// Apply relabels ls with b (Reset to ls), appends the result to dst[:0]
// and returns it with true, or returns dst[:0] and false when a rule drops
// the set.
func (r *Rules) Apply(b *labels.Builder, ls, dst labels.Labels) (labels.Labels, bool) {
	b.Reset(ls)
	if !r.Process(b) {
		return dst[:0], false
	}
	return b.Labels(dst), true
}

// value joins the values of the rule's source labels.
func (ru *rule) value(b *labels.Builder) string {
	switch len(ru.sources) {
	case 0:
		return ""
	case 1:
		return b.Get(ru.sources[0])
	}
	var va [16]string
	vals := va[:0]
	for _, s := range ru.sources {
		vals = append(vals, b.Get(s))
	}
	return strings.Join(vals, ru.sep)
}

func (ru *rule) apply(b *labels.Builder) bool {
	val := ru.value(b)
	switch ru.act {
	case actDrop:
		return !ru.re.MatchString(val)
	case actKeep:
		return ru.re.MatchString(val)
	case actDropEqual:
		return b.Get(ru.target) != val
	case actKeepEqual:
		return b.Get(ru.target) == val
	case actReplace:
		ru.replace(b, val)
	case actLowercase:
		b.Set(ru.target, strings.ToLower(val))
	case actUppercase:
		b.Set(ru.target, strings.ToUpper(val))
	case actHashMod:
		sum := md5.Sum([]byte(val))
		// The last 8 bytes, big-endian, as Prometheus takes them.
		b.Set(ru.target, strconv.FormatUint(binary.BigEndian.Uint64(sum[8:])%ru.modulus, 10))
	case actLabelMap:
		b.Range(func(l labels.Label) {
			if ru.re.MatchString(l.Name) {
				b.Set(ru.mapName(l.Name), l.Value)
			}
		})
	case actLabelDrop, actLabelKeep:
		drop := ru.act == actLabelDrop
		b.Range(func(l labels.Label) {
			if ru.re.MatchString(l.Name) == drop {
				b.Del(l.Name)
			}
		})
	}
	return true
}

// replace writes the expanded replacement to the expanded target label, if
// the regex matches val; an empty replacement deletes the label, and a
// target that expands to no valid label name is left alone.
func (ru *rule) replace(b *labels.Builder, val string) {
	if ru.matchAll && !ru.targetHasVar && !ru.replHasVar {
		b.Set(ru.target, ru.repl)
		return
	}
	var idx []int
	if ru.matchAll {
		var whole [4]int
		whole[1], whole[3] = len(val), len(val)
		idx = whole[:]
	} else if idx = ru.re.FindStringSubmatchIndex(val); idx == nil {
		return
	}
	target := ru.target
	if ru.targetHasVar {
		var tb [64]byte
		t := ru.re.ExpandString(tb[:0], ru.target, val, idx)
		if !labels.IsValidName(string(t)) {
			return
		}
		target = string(t)
	}
	if !ru.replHasVar {
		b.Set(target, ru.repl)
		return
	}
	if ru.matchAll && ru.repl == config.DefaultRelabelReplacement {
		b.Set(target, val) // $1 of (.*) is the value itself
		return
	}
	var rb [128]byte
	res := ru.re.ExpandString(rb[:0], ru.repl, val, idx)
	if len(res) == 0 {
		b.Del(target)
		return
	}
	b.Set(target, string(res))
}

// mapName is labelmap's new name for the matching name n: what
// Prometheus' Regexp.ReplaceAllString(n, replacement) gives, with fewer
// allocations when the regex matches n whole, once.
func (ru *rule) mapName(n string) string {
	switch {
	case !ru.whole:
		return ru.re.ReplaceAllString(n, ru.repl)
	case !ru.replHasVar:
		return ru.repl
	}
	var nb [64]byte
	return string(ru.re.ExpandString(nb[:0], ru.repl, n, ru.re.FindStringSubmatchIndex(n)))
}

// parses reports whether re is a regular expression on its own.
func parses(re string) bool {
	_, err := syntax.Parse(re, syntax.Perl)
	return err == nil
}
