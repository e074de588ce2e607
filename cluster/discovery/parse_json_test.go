package discovery

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/prom/labels"
)

// refGroup decodes a group as Prometheus' targetgroup.Group.UnmarshalJSON
// does with encoding/json: unknown fields refused, labels replaced by a
// repeated field (model.LabelSet's own UnmarshalJSON).
type refGroup struct {
	Targets []string
	Labels  map[string]string
}

type refLabels map[string]string

func (l *refLabels) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*l = m
	return nil
}

func (g *refGroup) UnmarshalJSON(b []byte) error {
	var x struct {
		Targets []string  `json:"targets"`
		Labels  refLabels `json:"labels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return err
	}
	g.Targets, g.Labels = x.Targets, x.Labels
	return nil
}

// refParse is what Prometheus makes of a body, in our Group form.
func refParse(in string) ([]Group, error) {
	var rgs []*refGroup
	if err := json.Unmarshal([]byte(in), &rgs); err != nil {
		return nil, err
	}
	var gs []Group
	for _, rg := range rgs {
		if rg == nil {
			return nil, errNilGroup
		}
		if len(rg.Targets) == 0 {
			continue
		}
		var ls []labels.Label
		for k, v := range rg.Labels {
			ls = append(ls, labels.Label{Name: k, Value: v})
		}
		gs = append(gs, addressGroup(rg.Targets, groupLabels(ls, testMeta)))
	}
	return gs, nil
}

type refError string

func (e refError) Error() string { return string(e) }

const errNilGroup = refError("nil target group item found")

// parseJSON decodes what encoding/json decodes, as Prometheus does, and
// refuses what it refuses; label names aside (procfleet's are legacy).
func TestParseJSONAsEncodingJSON(t *testing.T) {
	check := func(in string) {
		t.Helper()
		ours, err := parseJSON(strings.NewReader(in), testMeta, newBudget(DefaultConfig()))
		ref, refErr := refParse(in)
		if err != nil && strings.Contains(err.Error(), "is not a label name") {
			return
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: ours %v, encoding/json %v", in, err, refErr)
		}
		if err == nil && groupsString(ours) != groupsString(ref) {
			t.Fatalf("%q:\nours\n%s\nencoding/json\n%s", in, groupsString(ours), groupsString(ref))
		}
	}
	for _, in := range []string{
		`[{"targets": ["a\u00e9\ud83d\ude00\ud800x\udc00\\\/\b\f\n\r\t\"", "\xff\xfeok\xc3"], "labels": {"a": "\u0000"}}]`,
		"[{\"targets\": [\"a\x01\"]}]", `[{"targets": ["a"]}]x`, `[{"targets": ["a"]}] `, "\t[\n]\r", `[{"targets": ["\q"]}]`,
		`[{"targets": ["\u12"]}]`, `[{"TARGETS": ["a"], "Labels": {"a": "1"}, "labels": {"b": "2"}}]`, `[{}, {"targets": []}]`,
		`[1]`, `["a"]`, `[{"targets": [true]}]`, `[{"targets": ["a"], "labels": {"a": false}}]`, `nul`, `[nul]`, `[{"targets": nul}]`,
		`[{"targets": ["a"],}]`, `[,]`, `[{"targets": ["a"] "labels": {}}]`, `[{"targets" ["a"]}]`, `[{targets: ["a"]}]`,
	} {
		check(in)
	}
	pieces := []string{`[`, `]`, `{`, `}`, `,`, `:`, ` `, `"targets"`, `"labels"`, `"Targets"`, `"a"`, `"b:1"`, `null`, `1`, `-2.5e3`,
		`true`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, `"\n"`, "\"\xff\"", `"\q"`, `"x`, `""`, "\n", `"__meta_url"`, `"job"`}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		var b strings.Builder
		if r.IntN(4) > 0 {
			b.WriteString(`[{"targets": [`)
		}
		for range r.IntN(16) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		check(b.String())
	}
	// Well-formed lists with random groups.
	for range 20_000 {
		check(randomGroupsJSON(r))
	}
}

// randomGroupsJSON writes a well-formed list of random groups.
func randomGroupsJSON(r *rand.Rand) string {
	strs := []string{`"a:1"`, `"b:1"`, `null`, `"é\u00e9"`, `"\ud83d\ude00"`, "\"\xff\"", `""`, `"x\"y"`}
	names := []string{`"env"`, `"job"`, `"__address__"`, `"__meta_url"`, `"Env"`, `"a"`}
	var b strings.Builder
	b.WriteString("[")
	for g := range r.IntN(4) {
		if g > 0 {
			b.WriteString(",")
		}
		b.WriteString("{")
		for f := range r.IntN(4) {
			if f > 0 {
				b.WriteString(", ")
			}
			switch r.IntN(3) {
			case 0:
				b.WriteString(`"targets": [`)
				for i := range r.IntN(4) {
					if i > 0 {
						b.WriteString(",")
					}
					b.WriteString(strs[r.IntN(len(strs))])
				}
				b.WriteString("]")
			case 1:
				b.WriteString(`"labels": {`)
				for i := range r.IntN(4) {
					if i > 0 {
						b.WriteString(",")
					}
					b.WriteString(names[r.IntN(len(names))] + ":" + strs[r.IntN(len(strs))])
				}
				b.WriteString("}")
			default:
				b.WriteString(`"targets": null`)
			}
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	return b.String()
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`[{"targets": ["a:1"], "labels": {"a": "\u00e9"}}]`)
	f.Add(`[{"TARGETS": [null], "labels": null}]`)
	f.Fuzz(func(t *testing.T, in string) {
		ours, err := parseJSON(strings.NewReader(in), testMeta, newBudget(DefaultConfig()))
		ref, refErr := refParse(in)
		if err != nil && strings.Contains(err.Error(), "is not a label name") {
			return
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: ours %v, encoding/json %v", in, err, refErr)
		}
		if err == nil && groupsString(ours) != groupsString(ref) {
			t.Fatalf("%q:\nours\n%s\nencoding/json\n%s", in, groupsString(ours), groupsString(ref))
		}
	})
}
