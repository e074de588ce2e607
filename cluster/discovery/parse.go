package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

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

// groupLabels finishes a group's labels ls, which it may change: sorted,
// the last of a repeated name winning, with the list's meta label (which
// wins over a label of the same name, as in Prometheus).
func groupLabels(ls []labels.Label, meta labels.Label) labels.Labels {
	ls = append(ls, meta)
	return labels.FromUnsorted(ls)
}

// parseJSON reads a JSON list of target groups from r as a stream: what it
// holds at any time is the groups read so far, within b, and one token
// (within the reader's byte limit). Groups without targets are left out.
func parseJSON(r io.Reader, meta labels.Label, b *budget) ([]Group, error) {
	p := &jsonParser{dec: json.NewDecoder(r), b: b, meta: meta}
	gs, err := p.list()
	if err != nil {
		var tl errTooLarge
		if errors.As(err, &tl) {
			return nil, tl
		}
		return nil, fmt.Errorf("at byte %d: %w", p.dec.InputOffset(), err)
	}
	return gs, nil
}

type jsonParser struct {
	dec   *json.Decoder
	b     *budget
	meta  labels.Label
	addrs []string
}

func (p *jsonParser) list() ([]Group, error) {
	tok, err := p.dec.Token()
	switch {
	case err == io.EOF:
		return nil, errors.New("empty; want a JSON list of target groups such as [{\"targets\": [\"db-1:9187\"], \"labels\": {\"env\": \"prod\"}}]")
	case err != nil:
		return nil, err
	case tok == nil:
		return nil, p.end()
	case tok != json.Delim('['):
		return nil, fmt.Errorf("%s; want a JSON list of target groups such as [{\"targets\": [\"db-1:9187\"], \"labels\": {\"env\": \"prod\"}}]", describeToken(tok))
	}
	var gs []Group
	for i := 0; p.dec.More(); i++ {
		g, err := p.group()
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		if len(g.Targets) > 0 {
			gs = append(gs, g)
		}
	}
	if _, err := p.dec.Token(); err != nil { // ]
		return nil, err
	}
	return gs, p.end()
}

// end checks that nothing but white space follows the list.
func (p *jsonParser) end() error {
	_, err := p.dec.Token()
	switch err {
	case io.EOF:
		return nil
	case nil:
		return errors.New("data after the list of target groups")
	}
	return err
}

func (p *jsonParser) group() (Group, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return Group{}, err
	}
	if tok != json.Delim('{') {
		return Group{}, fmt.Errorf("%s; want a target group such as {\"targets\": [\"db-1:9187\"], \"labels\": {\"env\": \"prod\"}}", describeToken(tok))
	}
	p.addrs = p.addrs[:0]
	var lbls []labels.Label
	for p.dec.More() {
		key, err := p.dec.Token()
		if err != nil {
			return Group{}, err
		}
		// encoding/json, which Prometheus decodes with, matches field
		// names regardless of case; a repeated field replaces the first.
		switch k, _ := key.(string); {
		case strings.EqualFold(k, "targets"):
			err = p.targets()
		case strings.EqualFold(k, "labels"):
			lbls, err = p.labels()
		default:
			err = fmt.Errorf("unknown field %q; want targets and labels", k)
		}
		if err != nil {
			return Group{}, err
		}
	}
	if _, err := p.dec.Token(); err != nil { // }
		return Group{}, err
	}
	if len(p.addrs) == 0 {
		return Group{}, nil
	}
	if err := p.b.addTargets(len(p.addrs)); err != nil {
		return Group{}, err
	}
	g := addressGroup(p.addrs, groupLabels(lbls, p.meta))
	return g, p.b.addGroup(g)
}

// targets reads the targets list into p.addrs, stopping at the job's
// limit.
func (p *jsonParser) targets() error {
	p.addrs = p.addrs[:0]
	tok, err := p.dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("targets: %s; want a list of host:port strings", describeToken(tok))
	}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok && tok != nil {
			return fmt.Errorf("targets[%d]: %s; want a host:port string", len(p.addrs), describeToken(tok))
		}
		if p.b.targets+len(p.addrs) >= p.b.maxTargets {
			return p.b.addTargets(len(p.addrs) + 1)
		}
		p.addrs = append(p.addrs, s)
	}
	_, err = p.dec.Token() // ]
	return err
}

// labels reads a group's labels, at most the labels a target may have
// (a repeated name counting again).
func (p *jsonParser) labels() ([]labels.Label, error) {
	tok, err := p.dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("labels: %s; want an object of label names and string values", describeToken(tok))
	}
	var ls []labels.Label
	for p.dec.More() {
		key, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := key.(string)
		if !labels.IsValidName(name) {
			return nil, fmt.Errorf("labels: %q is not a label name; want [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
		tok, err := p.dec.Token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok && tok != nil {
			return nil, fmt.Errorf("labels.%s: %s; want a string", name, describeToken(tok))
		}
		ls = append(ls, labels.Label{Name: name, Value: v})
		if err := p.b.checkGroupLabels(len(ls)); err != nil {
			return nil, err
		}
	}
	_, err = p.dec.Token() // }
	return ls, err
}

// describeToken names a JSON token for a message, without quoting more
// than a little of a string.
func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			return "a list"
		case '{':
			return "an object"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return fmt.Sprintf("the string %q", t)
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", t)
	}
	return fmt.Sprintf("the number %v", tok)
}

// yamlGroup is a target group as YAML writes it.
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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&ygs); err != nil && err != io.EOF {
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

// yamlNodes returns a bound on the nodes a YAML parser (go.yaml.in/yaml/v3,
// libyaml's scanner) makes of data, counted from the indicators that
// introduce them: each node but the root is an item of a sequence, or a
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
