package promoracle

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/prometheus/prometheus/model/textparse"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/relabel"
)

func promTextParser(b []byte) textparse.Parser { return textparse.NewPromParser(b, nil, false) }

const entrySeries = textparse.EntrySeries

func mrule(action, source, regex, target, repl string) config.RelabelConfig {
	c := config.DefaultRelabelConfig()
	c.Action = action
	if source != "" {
		c.SourceLabels = strings.Split(source, ",")
	}
	if regex != "" {
		c.Regex = regex
	}
	c.TargetLabel = target
	if repl != "" {
		c.Replacement = repl
	}
	return c
}

func hashmod(source, target string, modulus uint64) config.RelabelConfig {
	c := mrule(config.RelabelHashMod, source, "", target, "")
	c.Modulus = modulus
	return c
}

// ruleSets are metric_relabel_configs jobs commonly carry, and some that
// break series.
var ruleSets = [][]config.RelabelConfig{
	{mrule(config.RelabelDrop, "__name__", "b.*", "", "")},
	{mrule(config.RelabelKeep, "__name__", "a|h_bucket|s", "", "")},
	{mrule(config.RelabelLabelDrop, "", "x|zone", "", "")},
	{mrule(config.RelabelLabelMap, "", "x_(.*)", "", "$1")},
	{mrule(config.RelabelLabelKeep, "", "__name__|job|instance|x", "", "")},
	{mrule(config.RelabelReplace, "__name__", "(.*)", "__name__", "${1}_renamed")},
	{mrule(config.RelabelReplace, "__name__", ".*", "__name__", "a-b")},
	{mrule(config.RelabelReplace, "instance", "([^:]+):.*", "host", "$1")},
	{mrule(config.RelabelLabelDrop, "", "__name__", "", "")},
	{mrule(config.RelabelReplace, "x", "(.+)", "job", "$1")},
	{mrule(config.RelabelUppercase, "__name__", "", "__name__", "")},
	{hashmod("__name__,x", "shard", 2), mrule(config.RelabelDrop, "shard", "0", "", "")},
}

// fixedBodyCases are bodies worth checking every time.
var fixedBodyCases = []bodyCase{
	{body: "# HELP a help\n# TYPE a counter\na 1\nb{x=\"1\",y=\"\"} 2.5\n", honorTimestamps: true},
	{body: "a { x = \"1\"  y=\"2\", } 3 \t\n", honorTimestamps: true},
	{body: "a{instance=\"x\",job=\"y\",exported_job=\"z\"} 1\n", honorTimestamps: true},
	{body: "a{job=\"y\"} 1\nb{job=\"\"} 2\n", honorLabels: true, honorTimestamps: true},
	{body: "a{job=\"\"} 1\n", honorTimestamps: true},
	{body: "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"x\"} 1\n# TYPE s summary\ns{quantile=\"0.50\"} 1\ns{le=\"1\"} 1\n", honorTimestamps: true},
	{body: "a +1\nb 1.5e3\nc -Inf\nd NaN\ne +inf\nf 1e-400\ng .5\nh 1.\n", honorTimestamps: true},
	{body: "a{x=\"q\\\"\\\\\\n\",y=\"C:\\temp\"} 1\n", honorTimestamps: true},
	{body: "{\"a\", \"x\"=\"1\"} 1\nb{\"y\"=\"2\"} 2\n", honorTimestamps: true},
	{body: "{\"a.b\"} 1\n", honorTimestamps: true},
	{body: "a 1\n\x00garbage\n", honorTimestamps: true},
	{body: "", honorTimestamps: true},
	{body: "a 1", honorTimestamps: true},
	{body: "a 1\na 2\nb 3\n", honorTimestamps: true},
	{body: "a 1\nb 2\nc 3\nc 4\n", sampleLimit: 2, honorTimestamps: true},
	{body: "a{x=\"1\"} 1\n", labelLimit: 3, honorTimestamps: true},
	{body: "a{x=\"1\"} 1\n", labelLimit: 4, honorTimestamps: true},
	{body: "a 1\nthis is not a sample\n", honorTimestamps: true},
	{body: "a{x=\"\xff\"} 1\n", honorTimestamps: true},
	{body: "a{x=\"1\",x=\"2\"} 1\n", honorTimestamps: true},
	{body: "a{__name__=\"b\"} 1\n", honorTimestamps: true},
	{body: " a 1\n", honorTimestamps: true},
	{body: "a 1\r\n", honorTimestamps: true},
	{body: "a 1 -5\n", honorTimestamps: true},
	{body: "# TYPE a  counter\na 1\n", honorTimestamps: true},
	{body: "# HELP a\na 1\n", honorTimestamps: true},
	{body: "#HELP x\n# UNIT a b\n# EOF\na 1\n", honorTimestamps: true},
	{body: "a 1 # {t=\"x\"} 1\n", honorTimestamps: true},
	{body: "a{x_1=\"v\"} 1\n", honorTimestamps: true, rules: ruleSets[3]},
	{body: "a{x_=\"v\"} 1\n", honorTimestamps: true, rules: ruleSets[3]},
	{body: "a{x=\"1\"} 1\nb{x=\"2\"} 2\nc 3\n", honorTimestamps: true, rules: ruleSets[0], static: map[string]string{"zone": "eu"}},
	{body: "a-1 1700000000000\n", honorTimestamps: true},
	{body: "a 1 5\n", honorTimestamps: true},
	{body: "a{x=\"\\é\"} 1\n", honorTimestamps: true},
	{body: "a{x=\"\\\x86\"} 1\n", honorTimestamps: true},
	{body: "a{job=\"x\",job=\"y\"} 1\n", honorTimestamps: true},
	{body: "a{job=\"x\",job=\"y\"} 1\n", honorTimestamps: true, honorLabels: true},
	{body: "a{x=\"x\",x=\"y\"} 1\n", honorTimestamps: true, rules: ruleSets[2]},
}

// Pools of the random bodies' parts.
var (
	bodyNames       = []string{"a", "b_total", "h_bucket", "s", "x:y", "_z", "job", "a"}
	bodyLabelNames  = []string{"x", "y", "le", "quantile", "job", "instance", "zone", "exported_job", "x_1", "__tmp"}
	badLabelNames   = []string{"__name__", "1x", "x-y"}
	bodyLabelValues = []string{"", "1", "0.50", "+Inf", "v", `a\"b`, `a\\b`, `a\nb`, `C:\temp`, "ÄbC", "1e3", "v"}
	badLabelValues  = []string{"\xff", "a\\"}
	bodyValues      = []string{"1", "-1.5", "+1", "NaN", "Inf", "-Inf", ".5", "1e3", "1e-400", "+Inf", "nan", "2", "3", "1.", "0"}
	badValues       = []string{"1e400", "0x1p3", "1_000", "abc", "+nan", "1,5"}
	bodyComments    = []string{"# HELP a help", "# TYPE h histogram", "# TYPE s summary", "# TYPE a counter",
		"# random words", "#", "# HELP", "# TYPE s summary", "# HELP a"}
	badComments  = []string{"# TYPE a  gauge", "# TYPE a info", "# HELP a \xff", "# TYPE a"}
	bodyBlanks   = []string{"", " ", "\t", "  "}
	bodyMutation = " \t{}\",=#\\\nx1.\r"
	staticSets   = []map[string]string{nil, nil, {"zone": "a"}, {"x": "t"}, {"exported_job": "e"}}
)

// randomBodyCase draws a body and a job; false when the job's rules are
// refused by either side.
func randomBodyCase(r *rand.Rand, now int64) (bodyCase, bool) {
	pick := func(pool []string) string { return pool[r.IntN(len(pool))] }
	// pickOr draws from bad one time in 40.
	pickOr := func(good, bad []string) string {
		if r.IntN(40) == 0 {
			return pick(bad)
		}
		return pick(good)
	}
	blank := func() string { return pick(bodyBlanks) }
	var b strings.Builder
	for range 1 + r.IntN(8) {
		switch r.IntN(10) {
		case 0:
			b.WriteString(pickOr(bodyComments, badComments))
		case 1:
			b.WriteString(blank())
		default:
			quoted := r.IntN(12) == 0
			name := pick(bodyNames)
			if !quoted {
				b.WriteString(name)
			}
			if n := r.IntN(4); n > 0 || quoted {
				if r.IntN(3) == 0 {
					b.WriteString(" ")
				}
				b.WriteString("{")
				if quoted {
					fmt.Fprintf(&b, "%q,", name)
				}
				names := r.Perm(len(bodyLabelNames))
				for i := range n {
					if i > 0 {
						b.WriteString([]string{",", ", ", " "}[r.IntN(3)])
					}
					ln := bodyLabelNames[names[i]]
					if r.IntN(40) == 0 {
						ln = pick(badLabelNames)
					}
					if r.IntN(15) == 0 {
						ln = fmt.Sprintf("%q", ln)
					}
					fmt.Fprintf(&b, "%s=\"%s\"", ln, pickOr(bodyLabelValues, badLabelValues))
				}
				if r.IntN(5) == 0 {
					b.WriteString(",")
				}
				b.WriteString("}")
			}
			b.WriteString(" " + pickOr(bodyValues, badValues))
			switch r.IntN(6) {
			case 0:
				fmt.Fprintf(&b, " %d", now-60000)
			case 1:
				fmt.Fprintf(&b, " %d", now+3600000)
			}
			b.WriteString(blank())
		}
		b.WriteString("\n")
	}
	body := []byte(b.String())
	for range max(0, r.IntN(8)-6) {
		if len(body) == 0 {
			break
		}
		i := r.IntN(len(body))
		switch r.IntN(3) {
		case 0:
			body = append(body[:i], append([]byte{bodyMutation[r.IntN(len(bodyMutation))]}, body[i:]...)...)
		case 1:
			body = append(body[:i], body[i+1:]...)
		default:
			body = append(body, body[i:]...)
		}
	}
	c := bodyCase{
		body: string(body), honorLabels: r.IntN(2) == 0, honorTimestamps: r.IntN(10) < 7,
		sampleLimit: []int{0, 0, 0, 2, 5}[r.IntN(5)], labelLimit: []int{0, 0, 0, 4, 5}[r.IntN(5)],
		static: staticSets[r.IntN(len(staticSets))],
	}
	switch r.IntN(4) {
	case 0:
		c.rules = ruleSets[r.IntN(len(ruleSets))]
	case 1:
		rules, _ := randomCase(r, "", "", "")
		for _, rc := range rules {
			if _, err := promConfig(rc); err != nil {
				return c, false
			}
		}
		if _, err := relabel.Compile(rules); err != nil {
			return c, false
		}
		c.rules = rules
	}
	return c, true
}
