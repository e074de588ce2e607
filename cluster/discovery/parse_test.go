package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/procfleet/procfleet/prom/labels"
)

var testMeta = labels.Label{Name: "__meta_url", Value: "http://sd/"}

// groupsString writes groups compactly for comparisons.
func groupsString(gs []Group) string {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "%s:", g.Labels)
		for _, t := range g.Targets {
			b.WriteString(" " + t.Get("__address__"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestParseJSON(t *testing.T) {
	ok := func(in, want string) {
		t.Helper()
		gs, err := parseJSON(strings.NewReader(in), testMeta, newBudget(DefaultConfig()))
		if err != nil {
			t.Fatalf("parseJSON(%s): %v", in, err)
		}
		if got := groupsString(gs); got != want {
			t.Fatalf("parseJSON(%s) =\n%s\nwant\n%s", in, got, want)
		}
	}
	ok(`null`, "")
	ok(` [ ] `, "")
	ok(`[{"targets": ["a:1", "b:2"], "labels": {"env": "prod", "__meta_url": "mine"}}]`,
		`{__meta_url="http://sd/", env="prod"}: a:1 b:2`+"\n")
	// Groups without targets are left out; labels null or absent.
	ok(`[{"labels": {"a": "1"}}, {"targets": ["x:1"], "labels": null}, {"targets": null}, {"targets": ["y:1"]}]`,
		`{__meta_url="http://sd/"}: x:1`+"\n"+`{__meta_url="http://sd/"}: y:1`+"\n")
	// encoding/json's ways, as Prometheus decodes: keys of any case, the
	// last of a repeated key, a null string is empty, but a null in a
	// repeated "targets" leaves the earlier one's element.
	ok(`[{"Targets": ["a:1"], "LABELS": {"a": "1"}, "labels": {"b": null}}]`, `{__meta_url="http://sd/", b=""}: a:1`+"\n")
	ok(`[{"targets": ["a:1"], "targets": [null, "b:1", null]}]`, `{__meta_url="http://sd/"}: a:1 b:1 `+"\n")

	bad := func(in, want string) {
		t.Helper()
		_, err := parseJSON(strings.NewReader(in), testMeta, newBudget(DefaultConfig()))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("parseJSON(%s) = %v; want an error with %q", in, err, want)
		}
	}
	bad(``, "empty; want a JSON list")
	bad(`{"targets": []}`, "an object; want a JSON list")
	bad(`[null]`, "group 0: null; want a target group")
	bad(`[{"targets": ["a:1"]}, {"targets": [1]}]`, "group 1: targets[0]: a number; want a host:port string")
	bad(`[{"targets": "a:1"}]`, `targets: the string "a:1"; want a list`)
	bad(`[{"target": ["a:1"]}]`, `unknown field "target"`)
	bad(`[{"labels": {"a.b": "1"}}]`, `"a.b" is not a label name`)
	bad(`[{"labels": {"a": 1}}]`, "labels.a: a number; want a string")
	bad(`[{"labels": {"a": {"b": "c"}}}]`, "labels.a: an object; want a string")
	bad(`[] []`, "data after the list")
	bad(`[{"targets": ["a:1"]}`, "at byte")
	bad(`[{"targets": ["a:1"],}]`, "invalid character")
}

func TestParseYAML(t *testing.T) {
	c := DefaultConfig()
	ok := func(in, want string) {
		t.Helper()
		gs, err := parseYAML([]byte(in), c.MaxYAMLNodes, testMeta, newBudget(c))
		if err != nil {
			t.Fatalf("parseYAML(%s): %v", in, err)
		}
		if got := groupsString(gs); got != want {
			t.Fatalf("parseYAML(%s) =\n%s\nwant\n%s", in, got, want)
		}
	}
	ok("", "")
	ok("# nothing\n", "")
	ok("- targets: [a:1, 'b:2']\n  labels: {env: prod, port: 9100}\n- labels: {a: b}\n",
		`{__meta_url="http://sd/", env="prod", port="9100"}: a:1 b:2`+"\n")
	bad := func(in, want string) {
		t.Helper()
		_, err := parseYAML([]byte(in), c.MaxYAMLNodes, testMeta, newBudget(c))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("parseYAML(%s) = %v; want an error with %q", in, err, want)
		}
	}
	bad("- targets: [a:1]\n  target: [b:1]\n", "field target not found")
	bad("- targets: [a:1]\n-\n", "group 1: empty")
	bad("- labels: {a.b: c}\n", `"a.b" is not a label name`)
	bad("targets: [a:1]\n", "cannot unmarshal")
	bad("- targets: [a:1]\n  targets: [b:1]\n", "field targets already set")
}

// hostile is a reader of a JSON list that would never end: prefix, then
// item again and again.
type hostile struct {
	prefix, item []byte
	read         int64
}

func (h *hostile) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(h.prefix) > 0 {
			c := copy(p[n:], h.prefix)
			h.prefix = h.prefix[c:]
			n += c
			continue
		}
		n += copy(p[n:], h.item) // items are short; a partial copy only at the end of p
		if n > len(p)-len(h.item) {
			break
		}
	}
	h.read += int64(n)
	return n, nil
}

// allocated returns the bytes f allocated (an upper bound of what it held
// at any time).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// peakHeap returns the most the heap's objects grew by while f ran,
// sampled every millisecond: what f held, and its garbage not yet
// collected.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	done := make(chan struct{})
	var peak uint64
	go func() {
		defer close(done)
		f()
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if h := read(); h > base && h-base > peak {
			peak = h - base
		}
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}

// A hostile list (endless, deeply nested, one huge string, 10 million
// targets) gets an error, having read and held a bounded amount.
func TestParseHostileBounded(t *testing.T) {
	c := DefaultConfig()
	cases := []struct {
		name      string
		r         *hostile
		maxBytes  int64
		want      string
		maxHeap   uint64
		maxReadMB int64
	}{
		{"10 million targets", &hostile{prefix: []byte(`[{"targets": [`), item: []byte(`"db-1.example.com:9100",`)}, c.MaxBytes,
			"more than 100000 targets", 48 << 20, 4},
		{"many one-target groups", &hostile{prefix: []byte(`[`), item: []byte(`{"targets": ["a:1"], "labels": {"a": "1"}},`)}, c.MaxBytes,
			"more than 100000 targets", 64 << 20, 8},
		{"deep nesting", &hostile{prefix: []byte(`[`), item: []byte(`[`)}, c.MaxBytes, "a list; want a target group", 4 << 20, 1},
		{"deep in labels", &hostile{prefix: []byte(`[{"labels": {"a": `), item: []byte(`[`)}, c.MaxBytes, "labels.a: a list; want a string", 4 << 20, 1},
		{"huge string", &hostile{prefix: []byte(`[{"targets": ["`), item: []byte(`aaaaaaaaaaaaaaaa`)}, c.MaxBytes, "a string longer than 1048576 bytes", 8 << 20, 2},
		{"endless white space", &hostile{prefix: []byte(`[`), item: []byte(`                `)}, 8 << 20, "larger than 8388608 bytes", 4 << 20, 9},
		{"repeated labels", &hostile{prefix: []byte(`[{"labels": {`), item: []byte(`"a":"1","b":"2",`)}, c.MaxBytes, "more than 1000 labels", 4 << 20, 1},
		{"many distinct labels", &hostile{prefix: []byte(`[{"labels": {"a":"1"`), item: nil}, c.MaxBytes, "more than 1000 labels", 4 << 20, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = tc.r
			if tc.r.item == nil {
				r = &distinctLabels{prefix: tc.r.prefix}
			}
			var err error
			heap := peakHeap(func() {
				_, err = parseJSON(limitReader(r, tc.maxBytes), testMeta, newBudget(c))
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one with %q", err, tc.want)
			}
			if heap > tc.maxHeap {
				t.Fatalf("the heap grew by %d MB; want at most %d MB", heap>>20, tc.maxHeap>>20)
			}
			if tc.r.read > tc.maxReadMB<<20 {
				t.Fatalf("read %d MB; want at most %d MB", tc.r.read>>20, tc.maxReadMB)
			}
			t.Logf("%v after %d KB read; heap grew by %d KB at most", err, tc.r.read>>10, heap>>10)
		})
	}
}

// distinctLabels is an endless object of distinct label names.
type distinctLabels struct {
	prefix []byte
	i      int
}

func (d *distinctLabels) Read(p []byte) (int, error) {
	if len(d.prefix) > 0 {
		n := copy(p, d.prefix)
		d.prefix = d.prefix[n:]
		return n, nil
	}
	d.i++
	return copy(p, fmt.Sprintf(`,"l%d":"v"`, d.i)), nil
}

// A YAML file is refused by its nodes before it is parsed, and one within
// the bound is parsed.
func TestParseYAMLBounded(t *testing.T) {
	c := DefaultConfig()
	var err error
	data := bytes.Repeat([]byte("- a\n"), 1_000_000)
	alloc := allocated(func() { _, err = parseYAML(data, c.MaxYAMLNodes, testMeta, newBudget(c)) })
	if err == nil || !strings.Contains(err.Error(), "more than 300000 (the limit of a YAML file)") {
		t.Fatalf("err = %v", err)
	}
	if alloc > 1<<20 {
		t.Fatalf("allocated %d KB to refuse it; want it refused before parsing", alloc>>10)
	}
	// The densest file within the bound: what the parser holds.
	data = bytes.Repeat([]byte("- a\n"), c.MaxYAMLNodes-2)
	heap := peakHeap(func() { _, err = parseYAML(data, c.MaxYAMLNodes, testMeta, newBudget(c)) })
	if err == nil || !strings.Contains(err.Error(), "cannot unmarshal") {
		t.Fatalf("err = %v", err)
	}
	if heap > 160<<20 {
		t.Fatalf("parsing %d nodes grew the heap by %d MB; want at most 160 MB", c.MaxYAMLNodes, heap>>20)
	}
	t.Logf("parsing %d YAML nodes grew the heap by %d MB at most", c.MaxYAMLNodes, heap>>20)
	// 100,000 targets in a block list are within the bound.
	data = []byte("- labels: {env: prod}\n  targets:\n" + strings.Repeat("  - db-1.example.com:9100\n", 100_000))
	gs, err := parseYAML(data, c.MaxYAMLNodes, testMeta, newBudget(c))
	if err != nil || countTargets(gs) != 100_000 {
		t.Fatalf("100,000 targets: %d, %v", countTargets(gs), err)
	}
	// Aliases that would expand a list many times are stopped.
	laughs := "a: &a [" + strings.Repeat("x:1,", 1000) + "x]\nb: &b [" + strings.Repeat("*a,", 1000) + "*a]\n"
	alloc = allocated(func() { _, err = parseYAML([]byte("- targets: [*b]\n"+laughs), c.MaxYAMLNodes, testMeta, newBudget(c)) })
	if err == nil || alloc > 256<<20 {
		t.Fatalf("aliases: err %v after %d MB", err, alloc>>20)
	}
}

// yamlNodes never counts fewer nodes than the YAML parser makes.
func TestYAMLNodesBound(t *testing.T) {
	check := func(doc string) {
		t.Helper()
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			return // not YAML: the parser stops early
		}
		if got, est := countNodes(&n), yamlNodes([]byte(doc)); est < got {
			t.Fatalf("yamlNodes = %d, the parser made %d, of:\n%s", est, got, doc)
		}
	}
	for _, doc := range []string{
		"", "a", "- a", "a: b", "[a, b]", "{a: b, c}", "- targets: [a:1, b:2]\n  labels: {a: b}\n",
		"- - - a\n", "a:\n  b:\n    c: d\n", "? a\n: b\n", "[a: b, c: d]", "{[a]: b}", "- &x a\n- *x\n",
		"a: |\n  - x\n  - y\n", "--- a\n", "- a\n- \n-\n", "a:\n", "[a:1,b:2]", "{a:1}", "[[[]]]",
		"- targets:\n  - db-1:9100\n  - db-2:9100\n", "x: !!str 1\n", "[?a, ?b: c]",
	} {
		check(doc)
	}
	// Random documents from YAML's indicators and a few scalars.
	pieces := []string{"-", " ", "\n", ":", "?", ",", "[", "]", "{", "}", "a", "b1", "'q'", "\"d\"", "&x ", "*x", "#c", "  ", "!!str ",
		"x:1", "&a", "*a", "!t", ".", "é", "a.b", "|\n", ">"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		var b strings.Builder
		for range 1 + r.IntN(24) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		check(b.String())
	}
	// Random valid documents, dense in nodes.
	for range 20_000 {
		var b strings.Builder
		genYAML(r, &b, 0, r.IntN(2) == 0, 3)
		check(b.String())
	}
}

// genYAML writes a random YAML node: in flow or block style, at indent.
func genYAML(r *rand.Rand, b *strings.Builder, indent int, flow bool, depth int) {
	scalars := []string{"a", "x:1", "'q'", `"d"`, "db-1.example.com:9100", "", "&a b", "*a", "!!str c", "1"}
	keys := []string{"k", `"k"`, "'k'", "&a k", "*a", "? k"}
	if depth == 0 || r.IntN(3) == 0 {
		b.WriteString(scalars[r.IntN(len(scalars))])
		return
	}
	n := 1 + r.IntN(3)
	pad := strings.Repeat(" ", indent)
	switch {
	case flow && r.IntN(2) == 0:
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString([]string{",", ", "}[r.IntN(2)])
			}
			if r.IntN(3) == 0 { // a single-pair mapping
				b.WriteString(keys[r.IntN(3)] + []string{":", ": "}[r.IntN(2)])
			}
			genYAML(r, b, indent, true, depth-1)
		}
		b.WriteString("]")
	case flow:
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(keys[r.IntN(len(keys))] + []string{":", ": "}[r.IntN(2)])
			genYAML(r, b, indent, true, depth-1)
		}
		b.WriteString("}")
	case r.IntN(2) == 0:
		for i := range n {
			if i > 0 {
				b.WriteString(pad)
			}
			b.WriteString("- ")
			genYAML(r, b, indent+2, r.IntN(2) == 0, depth-1)
			b.WriteString("\n")
		}
	default:
		for i := range n {
			if i > 0 {
				b.WriteString(pad)
			}
			b.WriteString(keys[r.IntN(4)] + ":\n" + pad + "  ")
			genYAML(r, b, indent+2, r.IntN(2) == 0, depth-1)
			b.WriteString("\n")
		}
	}
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

func TestLimitReader(t *testing.T) {
	b, err := io.ReadAll(limitReader(strings.NewReader("abcd"), 4))
	if err != nil || string(b) != "abcd" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	_, err = io.ReadAll(limitReader(strings.NewReader("abcde"), 4))
	var tl errTooLarge
	if !errors.As(err, &tl) {
		t.Fatalf("past the limit: %v", err)
	}
}
