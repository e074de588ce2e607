// Package relabeltest holds the table of relabeling and honor_labels cases
// that prom/relabel's tests check against their expected results and that
// the nested module internal/promoracle runs through Prometheus itself, so
// that both read the very same cases.
package relabeltest

// Case relabels Input with Rules.
type Case struct {
	Name string
	// Rules is a YAML list of relabeling rules, as under relabel_configs.
	Rules string
	// Input is the label set, as name/value pairs; values may be empty.
	Input []string
	// Want is the result, as name/value pairs sorted by name (never an
	// empty value); nil when Drop or Invalid.
	Want []string
	// Drop: a rule drops the label set.
	Drop bool
	// Invalid: Rules is refused.
	Invalid bool
}

// HonorCase merges Target into Scraped as honor_labels says, then applies
// Rules (metric_relabel_configs, may be empty).
type HonorCase struct {
	Name            string
	Scraped, Target []string
	Honor           bool
	Rules           string
	Want            []string
	Drop            bool
}

// Cases covers every action, the defaults, anchoring, empty values,
// hashmod, labelmap with groups and clashes, invalid UTF-8 values and the
// validity of an expanded target_label.
var Cases = []Case{
	{Name: "replace defaults copy the value", Rules: `[{source_labels: [a], target_label: b}]`,
		Input: []string{"a", "x"}, Want: []string{"a", "x", "b", "x"}},
	{Name: "replace joins sources with ;", Rules: `[{source_labels: [a, c, missing], target_label: b}]`,
		Input: []string{"a", "x", "c", "y"}, Want: []string{"a", "x", "b", "x;y;", "c", "y"}},
	{Name: "replace with an empty separator", Rules: `[{source_labels: [a, c], separator: "", target_label: b}]`,
		Input: []string{"a", "x", "c", "y"}, Want: []string{"a", "x", "b", "xy", "c", "y"}},
	{Name: "replace with groups", Rules: `[{source_labels: [__address__], regex: "(.+):(\\d+)", replacement: "$2-$1", target_label: hp}]`,
		Input: []string{"__address__", "db:9100"}, Want: []string{"__address__", "db:9100", "hp", "9100-db"}},
	{Name: "replace ${1} and $1x", Rules: `[{source_labels: [a], regex: "(.)(.)", replacement: "${1}x", target_label: b}, {source_labels: [a], regex: "(.)(.)", replacement: "$1x", target_label: a}]`,
		Input: []string{"a", "pq"}, Want: []string{"b", "px"}},
	{Name: "replace with named groups", Rules: `[{source_labels: [__address__], regex: "(?P<host>[^:]+):(?P<port>.*)", replacement: "${port}/${host}", target_label: x}]`,
		Input: []string{"__address__", "db:9100"}, Want: []string{"__address__", "db:9100", "x", "9100/db"}},
	{Name: "replace $$ is a dollar", Rules: `[{source_labels: [a], replacement: "$$1", target_label: b}]`,
		Input: []string{"a", "x"}, Want: []string{"a", "x", "b", "$1"}},
	{Name: "replace: regex anchored, no match leaves the target", Rules: `[{source_labels: [a], regex: "b", replacement: "hit", target_label: t}]`,
		Input: []string{"a", "abc", "t", "old"}, Want: []string{"a", "abc", "t", "old"}},
	{Name: "replace: alternation anchored as a whole", Rules: `[{source_labels: [a], regex: "a|b", replacement: "hit", target_label: t}]`,
		Input: []string{"a", "ab"}, Want: []string{"a", "ab"}},
	{Name: "replace: dot matches newline", Rules: `[{source_labels: [a], regex: "a.b", replacement: "hit", target_label: t}]`,
		Input: []string{"a", "a\nb"}, Want: []string{"a", "a\nb", "t", "hit"}},
	{Name: "replace: an empty result deletes the target", Rules: `[{source_labels: [missing], target_label: t}]`,
		Input: []string{"t", "old", "u", "1"}, Want: []string{"u", "1"}},
	{Name: "replace a literal with no sources", Rules: `[{target_label: env, replacement: prod}]`,
		Input: []string{"a", "1"}, Want: []string{"a", "1", "env", "prod"}},
	{Name: "replace an empty replacement deletes", Rules: `[{source_labels: [a], target_label: a, replacement: ""}]`,
		Input: []string{"a", "1", "b", "2"}, Want: []string{"b", "2"}},
	{Name: "replace with an explicit (.*)", Rules: `[{source_labels: [a], regex: "(.*)", target_label: b, replacement: "v"}]`,
		Input: []string{"c", "1"}, Want: []string{"b", "v", "c", "1"}},
	{Name: "target_label with groups", Rules: `[{source_labels: [a], regex: "(.+)", target_label: "${1}_x", replacement: "v"}]`,
		Input: []string{"a", "foo"}, Want: []string{"a", "foo", "foo_x", "v"}},
	{Name: "target_label expanding to an invalid name is skipped", Rules: `[{source_labels: [a], regex: "(.+)", target_label: "${1}_x", replacement: "v"}, {source_labels: [b], regex: "(.*)", target_label: "$1", replacement: "w"}]`,
		Input: []string{"a", "1a", "b", "a-b"}, Want: []string{"a", "1a", "b", "a-b"}},
	{Name: "target_label expanding to empty is skipped", Rules: `[{source_labels: [a], regex: "(x*)(.*)", target_label: "$1", replacement: "v"}]`,
		Input: []string{"a", "yy"}, Want: []string{"a", "yy"}},
	{Name: "lowercase and uppercase, non-ASCII too", Rules: `[{action: lowercase, source_labels: [a], target_label: lo}, {action: uppercase, source_labels: [a, b], target_label: up}]`,
		Input: []string{"a", "ÄbC", "b", "ß"}, Want: []string{"a", "ÄbC", "b", "ß", "lo", "äbc", "up", "ÄBC;ß"}},
	{Name: "lowercase of an empty value deletes", Rules: `[{action: lowercase, source_labels: [missing], target_label: a}]`,
		Input: []string{"a", "x", "b", "y"}, Want: []string{"b", "y"}},
	{Name: "keep matches", Rules: `[{action: keep, source_labels: [job], regex: "node|db"}]`,
		Input: []string{"job", "db"}, Want: []string{"job", "db"}},
	{Name: "keep is anchored", Rules: `[{action: keep, source_labels: [job], regex: "node|db"}]`,
		Input: []string{"job", "dbx"}, Drop: true},
	{Name: "keep an empty value with an empty regex", Rules: `[{action: keep, source_labels: [missing], regex: ""}]`,
		Input: []string{"a", "1"}, Want: []string{"a", "1"}},
	{Name: "drop with the default regex drops all", Rules: `[{action: drop, source_labels: [a]}]`,
		Input: []string{"a", "1"}, Drop: true},
	{Name: "drop stops later rules", Rules: `[{action: drop, source_labels: [a], regex: "1"}, {target_label: b, replacement: x}]`,
		Input: []string{"a", "1"}, Drop: true},
	{Name: "drop no match", Rules: `[{action: drop, source_labels: [a], regex: "1"}]`,
		Input: []string{"a", "11"}, Want: []string{"a", "11"}},
	{Name: "keepequal equal", Rules: `[{action: keepequal, source_labels: [a], target_label: b}]`,
		Input: []string{"a", "1", "b", "1"}, Want: []string{"a", "1", "b", "1"}},
	{Name: "keepequal not equal", Rules: `[{action: keepequal, source_labels: [a], target_label: b}]`,
		Input: []string{"a", "1", "b", "2"}, Drop: true},
	{Name: "keepequal of two missing labels", Rules: `[{action: keepequal, source_labels: [x], target_label: y}]`,
		Input: []string{"a", "1"}, Want: []string{"a", "1"}},
	{Name: "dropequal equal", Rules: `[{action: dropequal, source_labels: [a, c], target_label: b}]`,
		Input: []string{"a", "1", "b", "1;2", "c", "2"}, Drop: true},
	{Name: "dropequal not equal", Rules: `[{action: dropequal, source_labels: [a], target_label: b}]`,
		Input: []string{"a", "1"}, Want: []string{"a", "1"}},
	{Name: "hashmod", Rules: `[{action: hashmod, source_labels: [__address__], modulus: 8, target_label: shard}, {action: hashmod, source_labels: [__address__, a], modulus: 1000003, target_label: big}]`,
		Input: []string{"__address__", "db-1:9187", "a", "x"}, Want: []string{"__address__", "db-1:9187", "a", "x", "big", "299898", "shard", "4"}},
	{Name: "hashmod of an empty value", Rules: `[{action: hashmod, source_labels: [missing], modulus: 10, target_label: h}]`,
		Input: nil, Want: []string{"h", "8"}},
	{Name: "labelmap with groups", Rules: `[{action: labelmap, regex: "__meta_kubernetes_pod_label_(.+)"}]`,
		Input: []string{"__meta_kubernetes_pod_label_app", "web", "__meta_kubernetes_pod_label_tier", "fe", "job", "k"},
		Want:  []string{"__meta_kubernetes_pod_label_app", "web", "__meta_kubernetes_pod_label_tier", "fe", "app", "web", "job", "k", "tier", "fe"}},
	{Name: "labelmap with a replacement", Rules: `[{action: labelmap, regex: "(a|b)_(.*)", replacement: "${2}_${1}"}]`,
		Input: []string{"a_x", "1", "b_y", "2"}, Want: []string{"a_x", "1", "b_y", "2", "x_a", "1", "y_b", "2"}},
	{Name: "labelmap clash: the last in Prometheus' order wins", Rules: `[{action: labelmap, regex: "__meta_[ab]_(.+)"}]`,
		Input: []string{"__meta_a_x", "1", "__meta_b_x", "2"}, Want: []string{"__meta_a_x", "1", "__meta_b_x", "2", "x", "2"}},
	{Name: "labelmap clash: labels set earlier come last", Rules: `[{target_label: __meta_a_x, replacement: new}, {action: labelmap, regex: "__meta_[ab]_(.+)"}]`,
		Input: []string{"__meta_a_x", "1", "__meta_b_x", "2"}, Want: []string{"__meta_a_x", "new", "__meta_b_x", "2", "x", "new"}},
	{Name: "labelmap reads values from before the rule", Rules: `[{action: labelmap, regex: "(a|b)", replacement: "b"}]`,
		Input: []string{"a", "1", "b", "2"}, Want: []string{"a", "1", "b", "2"}},
	{Name: "labelmap does not see an empty value", Rules: `[{action: labelmap, regex: "(a)", replacement: "b"}]`,
		Input: []string{"a", "", "b", "2"}, Want: []string{"b", "2"}},
	{Name: "labelmap to an empty name", Rules: `[{action: labelmap, regex: "foo(.*)"}]`,
		Input: []string{"foo", "1"}, Want: []string{"", "1", "foo", "1"}},
	{Name: "labelmap with a regex that splits the anchors", Rules: `[{action: labelmap, regex: ")|(", replacement: "x"}]`,
		Input: []string{"ab", "1"}, Want: []string{"ab", "1", "xabx", "1"}},
	{Name: "labeldrop is anchored", Rules: `[{action: labeldrop, regex: "tmp"}]`,
		Input: []string{"tmp", "1", "tmp_x", "2", "xtmp", "3"}, Want: []string{"tmp_x", "2", "xtmp", "3"}},
	{Name: "labeldrop with a pattern", Rules: `[{action: labeldrop, regex: "__meta_.*|tmp_.+"}]`,
		Input: []string{"__meta_a", "1", "tmp_", "2", "tmp_x", "3", "job", "j"}, Want: []string{"job", "j", "tmp_", "2"}},
	{Name: "labelkeep", Rules: `[{action: labelkeep, regex: "__name__|job"}]`,
		Input: []string{"__name__", "up", "job", "j", "instance", "i"}, Want: []string{"__name__", "up", "job", "j"}},
	{Name: "labelkeep sees labels set earlier", Rules: `[{target_label: zz, replacement: v}, {action: labelkeep, regex: "a"}]`,
		Input: []string{"a", "1", "b", "2"}, Want: []string{"a", "1"}},
	{Name: "empty input values are left out", Rules: `[{target_label: b, replacement: x}]`,
		Input: []string{"a", "", "c", "1"}, Want: []string{"b", "x", "c", "1"}},
	{Name: "an empty input value reads as missing", Rules: `[{action: keepequal, source_labels: [a], target_label: missing}]`,
		Input: []string{"a", ""}, Want: []string{}},
	{Name: "invalid UTF-8 values are copied as bytes", Rules: `[{source_labels: [a], regex: "(.)(.*)", replacement: "$2", target_label: b}, {action: uppercase, source_labels: [a], target_label: c}]`,
		Input: []string{"a", "\xffq\xfe"}, Want: []string{"a", "\xffq\xfe", "b", "q\xfe", "c", "\uFFFDQ\uFFFD"}},
	{Name: "a regex matching invalid UTF-8", Rules: `[{action: keep, source_labels: [a], regex: "..."}]`,
		Input: []string{"a", "\xff\xfeq"}, Want: []string{"a", "\xff\xfeq"}},
	{Name: "action is case-insensitive", Rules: `[{action: Keep, source_labels: [a], regex: "1"}, {action: LabelDrop, regex: b}]`,
		Input: []string{"a", "1", "b", "2"}, Want: []string{"a", "1"}},
	{Name: "no rules", Rules: `[]`, Input: []string{"a", "1"}, Want: []string{"a", "1"}},

	{Name: "invalid: hashmod without modulus", Rules: `[{action: hashmod, source_labels: [a], target_label: b}]`, Invalid: true},
	{Name: "invalid: replace without target", Rules: `[{source_labels: [a]}]`, Invalid: true},
	{Name: "invalid: replace to a bad name", Rules: `[{source_labels: [a], target_label: "1x"}]`, Invalid: true},
	{Name: "invalid: keepequal with a regex", Rules: `[{action: keepequal, source_labels: [a], target_label: b, regex: x}]`, Invalid: true},
	{Name: "invalid: keepequal with a replacement", Rules: `[{action: keepequal, source_labels: [a], target_label: b, replacement: x}]`, Invalid: true},
	{Name: "invalid: labeldrop with a target", Rules: `[{action: labeldrop, regex: x, target_label: b}]`, Invalid: true},
	{Name: "invalid: labelkeep with a separator", Rules: `[{action: labelkeep, regex: x, separator: ","}]`, Invalid: true},
	{Name: "invalid: labelmap to a bad name", Rules: `[{action: labelmap, regex: "(.*)", replacement: "a-$1"}]`, Invalid: true},
	{Name: "invalid: uppercase to a template", Rules: `[{action: uppercase, source_labels: [a], target_label: "$1"}]`, Invalid: true},
	{Name: "invalid: unknown action", Rules: `[{action: keepifequal, source_labels: [a], target_label: b}]`, Invalid: true},
	{Name: "invalid: regex", Rules: `[{action: keep, source_labels: [a], regex: "(a"}]`, Invalid: true},
}

// HonorCases cover honor_labels true and false, exported_ chains and their
// order, empty values and reserved target labels.
var HonorCases = []HonorCase{
	{Name: "no clash", Scraped: []string{"__name__", "m", "a", "1"}, Target: []string{"job", "j", "instance", "i"},
		Want: []string{"__name__", "m", "a", "1", "instance", "i", "job", "j"}},
	{Name: "clash: target wins, scraped exported", Scraped: []string{"__name__", "m", "job", "x"}, Target: []string{"job", "j"},
		Want: []string{"__name__", "m", "exported_job", "x", "job", "j"}},
	{Name: "clash: exported_ taken by a scraped label", Scraped: []string{"job", "x", "exported_job", "y"}, Target: []string{"job", "j"},
		Want: []string{"exported_exported_job", "x", "exported_job", "y", "job", "j"}},
	{Name: "clash: exported_ taken by a target label", Scraped: []string{"a", "s"}, Target: []string{"a", "t", "exported_a", "u"},
		Want: []string{"a", "t", "exported_a", "u", "exported_exported_a", "s"}},
	{Name: "clashes resolved shortest name first", Scraped: []string{"a", "1", "exported_a", "2"}, Target: []string{"a", "t", "exported_a", "u"},
		Want: []string{"a", "t", "exported_a", "u", "exported_exported_a", "1", "exported_exported_exported_a", "2"}},
	{Name: "clashes resolved shortest name first, not in name order", Scraped: []string{"z", "1", "exported_z", "2"}, Target: []string{"z", "t", "exported_z", "u"},
		Want: []string{"exported_exported_exported_z", "2", "exported_exported_z", "1", "exported_z", "u", "z", "t"}},
	{Name: "honor: scraped wins", Honor: true, Scraped: []string{"job", "x"}, Target: []string{"job", "j", "env", "p"},
		Want: []string{"env", "p", "job", "x"}},
	{Name: "honor: a scraped empty value still wins", Honor: true, Scraped: []string{"env", "", "a", "1"}, Target: []string{"env", "p"},
		Want: []string{"a", "1"}},
	{Name: "a scraped empty value is no clash", Scraped: []string{"job", ""}, Target: []string{"job", "j"},
		Want: []string{"job", "j"}},
	{Name: "a target empty value deletes the scraped label", Scraped: []string{"env", "x"}, Target: []string{"env", ""},
		Want: []string{"exported_env", "x"}},
	{Name: "reserved target labels are not merged", Scraped: []string{"__name__", "m"}, Target: []string{"__address__", "h:1", "__scheme__", "http", "job", "j"},
		Want: []string{"__name__", "m", "job", "j"}},
	{Name: "reserved target labels are not merged, honor", Honor: true, Scraped: []string{"__name__", "m"}, Target: []string{"__metrics_path__", "/m", "job", "j"},
		Want: []string{"__name__", "m", "job", "j"}},
	{Name: "metric relabeling after the merge", Scraped: []string{"__name__", "go_gc", "job", "x"}, Target: []string{"job", "j"},
		Rules: `[{action: drop, source_labels: [__name__], regex: "go_.*"}]`, Drop: true},
	{Name: "metric relabeling sees exported_", Scraped: []string{"__name__", "m", "job", "x"}, Target: []string{"job", "j", "instance", "i"},
		Rules: `[{source_labels: [exported_job], target_label: job}, {action: labeldrop, regex: exported_job}]`,
		Want:  []string{"__name__", "m", "instance", "i", "job", "x"}},
	{Name: "labelmap after the merge: target labels come last", Scraped: []string{"x_a", "s", "y_a", "s2"}, Target: []string{"x_a", "t"},
		Rules: `[{action: labelmap, regex: "[xy]_(a)"}]`,
		Want:  []string{"a", "t", "exported_x_a", "s", "x_a", "t", "y_a", "s2"}},
}
