package promtext

import (
	"strings"
)

// ruleCase is one body and what Check must say of it. The table serves
// the rule tests, the round trip, the VictoriaMetrics cross-check and the
// fuzzer's seeds.
type ruleCase struct {
	name     string
	body     string
	limits   func(*Limits) // changes to DefaultLimits, or nil
	samples  int           // for an accepted body
	line     int           // line of the fault; 0 for an accepted body
	col      int           // column of the fault; 0 leaves it unchecked
	reason   string        // reason of the fault, before Limits.explain
	tooLarge bool          // ErrTooLarge instead of a line fault
}

func (c ruleCase) lim() Limits {
	lim := DefaultLimits()
	if c.limits != nil {
		c.limits(&lim)
	}
	return lim
}

func (c ruleCase) accepted() bool { return c.line == 0 && !c.tooLarge }

// accept and refuse build the table's rows.
func accept(name, body string, samples int) ruleCase {
	return ruleCase{name: name, body: body, samples: samples}
}

func refuse(name, body string, line, col int, reason string) ruleCase {
	return ruleCase{name: name, body: body, line: line, col: col, reason: reason}
}

func withLimits(c ruleCase, f func(*Limits)) ruleCase {
	c.limits = f
	return c
}

var ruleCases = []ruleCase{
	// Lines that are skipped.
	accept("empty body", "", 0),
	accept("empty lines", "\n\n\r\n", 0),
	accept("blank lines", "  \t\n\t\r\n", 0),
	accept("comments", "# HELP foo Help text.\n# TYPE foo counter\n#\n", 0),
	accept("indented comment", "  \t# comment\n", 0),
	accept("comment with anything", "# {a=\"b\"} \\x \xff 1 2 3\n", 0),

	// Samples.
	accept("bare", "foo 1\n", 1),
	accept("no final newline", "foo 1", 1),
	accept("crlf", "foo 1\r\nbar 2\r\n", 2),
	accept("crlf without final newline", "foo 1\r", 1),
	accept("node_exporter line", `node_cpu_seconds_total{cpu="0",mode="idle",instance="h1"} 12345.67 1700000000000`+"\n", 1),
	accept("empty braces", "foo{} 1\n", 1),
	accept("trailing comma", `foo{a="b",} 1`, 1),
	accept("blanks everywhere", "\t foo \t{ a = \"b\" ,\tc=\"d\" , } \t1 \t 2 \t\n", 1),
	accept("blank before brace", `foo {a="b"} 1`, 1),
	accept("no blank after brace", `foo{a="b"}1`, 1),
	accept("name characters", "_:a:b_C9 1\n:x 2\n_ 3\n", 3),
	accept("label name characters", `foo{_=" ",_a9="",A_Z="x"} 1`, 1),
	accept("mixed body", "# TYPE a gauge\na 1\n\nb{x=\"y\"} 2 3\n  # c\nc 4\n", 3),

	// Label values.
	accept("escapes", `foo{a="\\",b="\"",c="\n",d="x\\\"\ny"} 1`, 1),
	accept("empty value", `foo{a=""} 1`, 1),
	accept("unicode value", `foo{a="ünïcødé 日本 🙂"} 1`, 1),
	accept("replacement character", "foo{a=\"\xef\xbf\xbd\"} 1", 1),
	accept("syntax characters in value", `foo{a="{}#,= 1 2",b="}"} 1`, 1),
	accept("raw tab and CR in value", "foo{a=\"x\ty\rz\"} 1\n", 1),
	accept("le +Inf", `foo_bucket{le="+Inf"} 1`, 1),

	// Values.
	accept("special values", "a NaN\nb nan\nc +Inf\nd -Inf\ne Inf\nf inf\ng Infinity\nh -infinity\ni +INF\n", 9),
	accept("numbers", "a 0\nb -0\nc 007\nd 1.\ne .5\nf -.5\ng 1.5e-10\nh 1E+5\ni -1e308\nj 1e-400\nk 1.e5\n", 11),
	accept("long integer", "a "+strings.Repeat("9", 300)+"\n", 1),

	// Timestamps.
	accept("timestamp ms", "foo 1 1700000000000\n", 1),
	accept("timestamp negative", "foo 1 -1\n", 1),
	accept("timestamp float seconds", "foo 1 1700000000.123\n", 1),
	accept("timestamp exponent", "foo 1 1.7e12\n", 1),
	accept("timestamp 18 digits", "foo 1 999999999999999999\n", 1),
	accept("timestamp 19 digits", "foo 1 1000000000000000000\n", 1),
	accept("timestamp trailing blanks", "foo 1 2 \t\n", 1),

	// Metric names.
	refuse("missing value", "foo\n", 1, 4, reasonMissingValue),
	refuse("missing value after blank", "foo \t\n", 1, 6, reasonMissingValue),
	refuse("missing value after labels", `foo{a="b"}`, 1, 11, reasonMissingValue),
	refuse("no name", `{a="b"} 1`, 1, 1, reasonNameStart),
	refuse("name starts with digit", "1foo 1", 1, 1, reasonNameStart),
	refuse("quoted name", `{"foo", a="b"} 1`, 1, 1, reasonNameStart),
	refuse("dash in name", "foo-bar 1", 1, 4, reasonNameChar),
	refuse("dot in name", "foo.bar 1", 1, 4, reasonNameChar),
	refuse("non-ASCII name", "föo 1", 1, 2, reasonNameChar),
	refuse("BOM", "\xef\xbb\xbffoo 1", 1, 1, reasonNameStart),

	// Labels.
	refuse("quoted label name", `foo{"a"="b"} 1`, 1, 5, reasonLabelName),
	refuse("empty label name", `foo{="x"} 1`, 1, 5, reasonLabelName),
	refuse("comma alone", `foo{,} 1`, 1, 5, reasonLabelName),
	refuse("two commas", `foo{a="b",,} 1`, 1, 11, reasonLabelName),
	refuse("label starts with digit", `foo{1a="b"} 1`, 1, 5, reasonLabelName),
	refuse("colon in label name", `foo{a:b="c"} 1`, 1, 6, reasonLabelNameChar),
	refuse("dash in label name", `foo{a-b="c"} 1`, 1, 6, reasonLabelNameChar),
	refuse("missing equals", `foo{a "b"} 1`, 1, 7, reasonMissingEquals),
	refuse("label without value", `foo{a} 1`, 1, 6, reasonMissingEquals),
	refuse("unquoted value", `foo{a=b} 1`, 1, 7, reasonUnquotedValue),
	refuse("single quotes", `foo{a='b'} 1`, 1, 7, reasonUnquotedValue),
	refuse("value at end of line", `foo{a=`, 1, 7, reasonUnquotedValue),
	refuse("unclosed quote", `foo{a="b} 1`, 1, 7, reasonUnclosedQuote),
	refuse("escaped closing quote", `foo{a="\"} 1`, 1, 7, reasonUnclosedQuote),
	refuse("unclosed braces", `foo{a="b"`, 1, 10, reasonUnclosedLabels),
	refuse("unclosed braces after comma", `foo{a="b", `, 1, 12, reasonUnclosedLabels),
	refuse("missing comma", `foo{a="b" c="d"} 1`, 1, 11, reasonMissingComma),
	refuse("duplicate label", `foo{a="b",c="d",a="e"} 1`, 1, 17, reasonDuplicateLabel),
	refuse("__name__ label", `foo{__name__="bar"} 1`, 1, 5, reasonReservedLabel),
	refuse("unknown escape", `foo{a="C:\temp"} 1`, 1, 10, reasonEscape),
	refuse("escaped x", `foo{a="\x41"} 1`, 1, 8, reasonEscape),
	refuse("backslash at end", `foo{a="\`, 1, 8, reasonEscape),
	refuse("invalid UTF-8", "foo{a=\"\xff\"} 1", 1, 8, reasonUTF8),
	refuse("overlong UTF-8", "foo{a=\"ok\xc0\xaf\"} 1", 1, 10, reasonUTF8),
	refuse("surrogate", "foo{a=\"\xed\xa0\x80\"} 1", 1, 8, reasonUTF8),
	refuse("truncated UTF-8", "foo{a=\"\xe6\x97\"} 1", 1, 8, reasonUTF8),

	// Values.
	refuse("word value", "foo bar", 1, 5, reasonValue),
	refuse("plus number", "foo +1", 1, 5, reasonValue),
	refuse("plus fraction", "foo +.5", 1, 5, reasonValue),
	refuse("hex value", "foo 0x10", 1, 5, reasonValue),
	refuse("underscore value", "foo 1_000", 1, 5, reasonValue),
	refuse("exponent without digits", "foo 1e", 1, 5, reasonValue),
	refuse("dot alone", "foo .", 1, 5, reasonValue),
	refuse("minus alone", "foo -", 1, 5, reasonValue),
	refuse("two dots", "foo 1.2.3", 1, 5, reasonValue),
	refuse("fractional exponent", "foo 1e5.5", 1, 5, reasonValue),
	refuse("signed NaN", "foo -NaN", 1, 5, reasonValue),
	refuse("plus NaN", "foo +nan", 1, 5, reasonValue),
	refuse("truncated infinity", "foo infinit", 1, 5, reasonValue),
	refuse("value with comment", "foo 1#2", 1, 5, reasonValue),
	refuse("two CRs", "foo 1\r\r\n", 1, 5, reasonValue),
	refuse("value overflow", "foo 1e309", 1, 5, reasonValueRange),
	refuse("negative overflow", "foo -1.8e308", 1, 5, reasonValueRange),
	refuse("long integer overflow", "foo "+strings.Repeat("9", 310), 1, 5, reasonValueRange),

	// Timestamps and what follows.
	refuse("word timestamp", "foo 1 abc", 1, 7, reasonTimestamp),
	refuse("plus timestamp", "foo 1 +5", 1, 7, reasonTimestamp),
	refuse("NaN timestamp", "foo 1 NaN", 1, 7, reasonTimestamp),
	refuse("Inf timestamp", "foo 1 -Inf", 1, 7, reasonTimestamp),
	refuse("exemplar", `foo 1 # {trace_id="x"} 1`, 1, 7, reasonTimestamp),
	refuse("timestamp overflow", "foo 1 9223372036854775808", 1, 7, reasonTimestampRange),
	refuse("timestamp max rounds to 2^63", "foo 1 9223372036854775807", 1, 7, reasonTimestampRange),
	refuse("timestamp min", "foo 1 -9223372036854775808", 1, 7, reasonTimestampRange),
	refuse("timestamp exponent overflow", "foo 1 1e19", 1, 7, reasonTimestampRange),
	refuse("timestamp beyond float64", "foo 1 1e400", 1, 7, reasonTimestampRange),
	refuse("three fields", "foo 1 2 3", 1, 9, reasonTrailing),
	refuse("comment after timestamp", "foo 1 2 # c", 1, 9, reasonTrailing),

	// NUL bytes.
	refuse("NUL alone", "\x00", 1, 1, reasonNUL),
	refuse("NUL after value", "foo 1\x00", 1, 6, reasonNUL),
	refuse("NUL in name", "fo\x00o 1", 1, 3, reasonNUL),
	refuse("NUL in label value", "foo{a=\"\x00\"} 1", 1, 8, reasonNUL),
	refuse("NUL in comment", "# a\x00b\n", 1, 4, reasonNUL),
	refuse("NUL after a fault", "foo{a=b\x00} 1", 1, 8, reasonNUL),

	// Line numbers.
	refuse("fifth line", "a 1\nb 2\n\n# c\nd x\ne 5\n", 5, 3, reasonValue),
	refuse("crlf line numbers", "a 1\r\nb\r\n", 2, 2, reasonMissingValue),
	refuse("last line without newline", "a 1\nb 2\nc", 3, 2, reasonMissingValue),

	// Limits.
	withLimits(accept("labels at limit", `foo{a="1",b="2"} 1`, 1), func(l *Limits) { l.MaxLabels = 2 }),
	withLimits(refuse("too many labels", `foo{a="1",b="2",c="3"} 1`, 1, 17, reasonTooManyLabels), func(l *Limits) { l.MaxLabels = 2 }),
	withLimits(accept("label name at limit", `foo{abc="x"} 1`, 1), func(l *Limits) { l.MaxLabelNameBytes = 3 }),
	withLimits(refuse("label name too long", `foo{abcd="x"} 1`, 1, 5, reasonLabelNameTooLong), func(l *Limits) { l.MaxLabelNameBytes = 3 }),
	withLimits(accept("label value at limit", `abc{a="abc",b="a\\b",c="\n\n\""} 1`, 1), func(l *Limits) { l.MaxLabelValueBytes = 3 }),
	withLimits(refuse("label value too long", `foo{a="abcd"} 1`, 1, 8, reasonLabelValueTooLong), func(l *Limits) { l.MaxLabelValueBytes = 3 }),
	withLimits(refuse("name too long", "abcd 1", 1, 1, reasonNameTooLong), func(l *Limits) { l.MaxLabelValueBytes = 3 }),
	withLimits(accept("line at limit", "foo 123456\nbar 1\n", 2), func(l *Limits) { l.MaxLineBytes = 10 }),
	withLimits(refuse("line too long", "foo 1\nfoo 1234567\n", 2, 11, reasonLineTooLong), func(l *Limits) { l.MaxLineBytes = 10 }),
	withLimits(refuse("CR counts", "foo 123456\r\n", 1, 11, reasonLineTooLong), func(l *Limits) { l.MaxLineBytes = 10 }),
	withLimits(refuse("long last line", "foo 1\nfoo 1234567", 2, 11, reasonLineTooLong), func(l *Limits) { l.MaxLineBytes = 10 }),
	withLimits(refuse("long line hides fault", "foo 1\nx x x x x x x x x x\n", 2, 11, reasonLineTooLong), func(l *Limits) { l.MaxLineBytes = 10 }),
	withLimits(accept("body at limit", "a 1\nb 2\n", 2), func(l *Limits) { l.MaxBytes = 8 }),
	withLimits(ruleCase{name: "body too large", body: "a 1\nb 2\n", tooLarge: true}, func(l *Limits) { l.MaxBytes = 7 }),
	withLimits(ruleCase{name: "too large at a line end", body: "a 1\nb 2\n", tooLarge: true}, func(l *Limits) { l.MaxBytes = 4 }),
	withLimits(refuse("fault before the limit", "x\nb 2\n", 1, 2, reasonMissingValue), func(l *Limits) { l.MaxBytes = 4 }),
	withLimits(refuse("long line cut by the limit", "a 1\nbbbbbbbbbbbbbbbbbbbb 2\n", 2, 11, reasonLineTooLong),
		func(l *Limits) { l.MaxBytes = 16; l.MaxLineBytes = 10 }),
}
