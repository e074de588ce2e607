package discovery

import (
	"bytes"
	"fmt"
	"io"

	yaml "go.yaml.in/yaml/v2"

	"github.com/procfleet/procfleet/prom/labels"
)

// Target group lists are Prometheus' file_sd and http_sd format:
// [{"targets": ["host:port", ...], "labels": {"name": "value", ...}}, ...],
// in JSON or (file_sd) YAML. Parsing is as strict as Prometheus' (unknown
// keys, a null group and a non-string target are refused), and label names
// are Prometheus' legacy ones, as everywhere in procfleet.

// errTooLarge is returned by a limitedReader whose input goes on past its
// limit.
type errTooLarge int64

func (e errTooLarge) Error() string {
	return fmt.Sprintf("larger than %d bytes (the limit of a file or body)", int64(e))
}

// limitedReader reads at most max bytes of r and fails with errTooLarge
// when r has more, where io.LimitReader would end early as if r did.
type limitedReader struct {
	r   io.Reader
	n   int64
	max int64
}

func limitReader(r io.Reader, max int64) *limitedReader {
	return &limitedReader{r: r, n: max, max: max}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge(l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Format is the format of a list of target groups.
type Format int

// Formats of ParseGroups.
const (
	// JSON is file_sd's .json files and http_sd's bodies.
	JSON Format = iota
	// YAML is file_sd's .yml and .yaml files.
	YAML
)

// ParseGroups reads a list of target groups in Prometheus' file_sd format
// from r as file_sd_configs and http_sd_configs read them: within the
// bounds of c (bytes, targets, labels, YAML nodes), the groups without
// targets left out, each group's labels completed with meta (the
// __meta_filepath or __meta_url of the list). It is safe for concurrent
// use.
func ParseGroups(r io.Reader, f Format, meta labels.Label, c Config) ([]Group, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	lr := limitReader(r, c.MaxBytes)
	if f == JSON {
		return parseJSON(lr, meta, newBudget(c))
	}
	data, err := io.ReadAll(lr)
	if err != nil {
		return nil, err
	}
	return parseYAML(data, c.MaxYAMLNodes, meta, newBudget(c))
}

// groupLabels finishes a group's labels ls, which it may change: sorted,
// the last of a repeated name winning, with the list's meta label (which
// wins over a label of the same name, as in Prometheus).
func groupLabels(ls []labels.Label, meta labels.Label) labels.Labels {
	ls = append(ls, meta)
	return labels.FromUnsorted(ls)
}

// yamlGroup is a target group as YAML writes it. It is decoded with
// go.yaml.in/yaml/v2's UnmarshalStrict, as Prometheus' file_sd does, so
// that a file means the same to both (v3 differs: it leaves a null out of
// a list, takes a lone "!" for null).
type yamlGroup struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
}

// parseYAML reads a YAML list of target groups from data, which it first
// bounds by its nodes: a YAML parser holds the whole document.
func parseYAML(data []byte, maxNodes int, meta labels.Label, b *budget) ([]Group, error) {
	if n := yamlNodes(data); n > maxNodes {
		return nil, fmt.Errorf("up to %d YAML nodes, more than %d (the limit of a YAML file); write long lists as JSON (.json), which is read as a stream", n, maxNodes)
	}
	var ygs []*yamlGroup
	if err := yaml.UnmarshalStrict(data, &ygs); err != nil {
		return nil, err
	}
	var gs []Group
	for i, yg := range ygs {
		if yg == nil {
			return nil, fmt.Errorf("group %d: empty; want a target group such as {targets: [db-1:9187], labels: {env: prod}}", i)
		}
		for name := range yg.Labels {
			if !labels.IsValidName(name) {
				return nil, fmt.Errorf("group %d: labels: %q is not a label name; want [a-zA-Z_][a-zA-Z0-9_]*", i, name)
			}
		}
		if len(yg.Targets) == 0 {
			continue
		}
		if err := b.checkGroupLabels(len(yg.Labels)); err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		if err := b.addTargets(len(yg.Targets)); err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		ls := make([]labels.Label, 0, len(yg.Labels)+1)
		for k, v := range yg.Labels {
			ls = append(ls, labels.Label{Name: k, Value: v})
		}
		g := addressGroup(yg.Targets, groupLabels(ls, meta))
		if err := b.addGroup(g); err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// yamlNodes returns a bound on the nodes a YAML parser makes of data (the
// Go ports of libyaml, go.yaml.in/yaml/v2 and v3, whose scanners agree on
// the indicators), counted from the indicators that introduce them: each node but the root is an item of a sequence, or a
// key or value of a mapping, and so follows a block entry "- " (one item),
// a value or key indicator (a key and its value), a '[', '{' or ',' (an
// item, or a key and its value). Indicators inside quoted strings and
// comments count too: the bound is over, never under (TestYAMLNodesBound
// checks it against the parser, and that each weight is needed).
func yamlNodes(data []byte) int {
	// Flow context, where more is an indicator, needs a '[' or '{'.
	flow := bytes.ContainsAny(data, "[{")
	n := 2 // the document and its root
	for i, c := range data {
		switch c {
		case '-':
			if yamlBlank(data, i+1) {
				n++
			}
		case '?':
			if flow || yamlBlank(data, i+1) {
				n += 2
			}
		case ':':
			if yamlBlank(data, i+1) || flow && colonStartsToken(data, i) {
				n += 2
			}
		case ',', '[', '{':
			n += 2
		}
	}
	return n
}

// colonStartsToken reports whether the ':' at data[i], not followed by a
// blank, may start a token, which in flow context makes it a value
// indicator. libyaml keeps such a ':' inside a plain scalar or a tag (as in
// [db-1:9100]); it starts a token after a blank, a flow indicator, a
// quoted scalar, an anchor or an alias (&a:, *a:), or at the start.
func colonStartsToken(data []byte, i int) bool {
	j := i
	for j > 0 && yamlAlpha(data[j-1]) {
		j--
	}
	if j < i { // after [0-9A-Za-z_-]: an anchor's or alias' name ends there, a plain scalar does not
		return j > 0 && (data[j-1] == '&' || data[j-1] == '*')
	}
	if i == 0 {
		return true
	}
	switch data[i-1] {
	case '.', '/', '%', '!', '+', '=', '~', '@', '$', '(', ')', '<', '>', ';', '^', '|', '`', '#':
		return false // inside a plain scalar, a tag or a comment
	}
	return true // a blank, a flow indicator, a quote, any other byte
}

// yamlAlpha is libyaml's is_alpha.
func yamlAlpha(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-'
}

// yamlBlank reports whether data[i:] starts with what libyaml's is_blankz
// takes for a blank: the end, NUL, space, tab, a line break (CR, LF, NEL,
// LS, PS).
func yamlBlank(data []byte, i int) bool {
	if i >= len(data) {
		return true
	}
	switch data[i] {
	case 0, ' ', '\t', '\r', '\n', 0xC2, 0xE2: // 0xC2 0x85 is NEL, 0xE2 0x80 0xA8/A9 LS and PS
		return true
	}
	return false
}
