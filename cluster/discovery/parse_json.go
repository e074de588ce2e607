package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/procfleet/procfleet/prom/labels"
)

// parseJSON reads a JSON list of target groups from r as a stream: what it
// holds at any time is the groups read so far, within b, and the string
// being read (within the reader's byte limit). Groups without targets are
// left out. It decodes as Prometheus' json.Unmarshal into targetgroup.Group
// does (field names of any case, the last of a repeated field, null for an
// empty string, invalid UTF-8 replaced by U+FFFD), with a lexer of its own:
// encoding/json's Decoder.Token, the standard library's stream reader,
// took 53 allocations and about 4.5 µs for a group of one target and two
// labels, this lexer 6 and 1.4 µs (BenchmarkParseJSON100k); label names and
// values are interned, so that groups share them.
func parseJSON(r io.Reader, meta labels.Label, b *budget) ([]Group, error) {
	p := &jsonParser{lex: jsonLexer{r: bufio.NewReaderSize(r, 32<<10)}, b: b, meta: meta}
	gs, err := p.list()
	if err != nil {
		var tl errTooLarge
		if errors.As(err, &tl) {
			return nil, tl
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("at byte %d: %w", p.lex.off, err)
	}
	return gs, nil
}

type jsonParser struct {
	lex  jsonLexer
	b    *budget
	meta labels.Label
	// addrs are the group's targets, addrs[:n]. Past n it keeps what an
	// earlier "targets" field of the group wrote: encoding/json decodes a
	// repeated field into the same array, where a null element leaves what
	// was there (and Prometheus takes that).
	addrs []string
	n     int
}

const wantList = `want a JSON list of target groups such as [{"targets": ["db-1:9187"], "labels": {"env": "prod"}}]`

func (p *jsonParser) list() ([]Group, error) {
	c, err := p.lex.peek()
	switch {
	case err == io.EOF:
		return nil, errors.New("empty; " + wantList)
	case err != nil:
		return nil, err
	case c == 'n':
		if err := p.lex.literal("null"); err != nil {
			return nil, err
		}
		return nil, p.end()
	case c != '[':
		return nil, fmt.Errorf("%s; %s", p.lex.describe(), wantList)
	}
	var gs []Group
	err = p.lex.items('[', ']', func(i int) error {
		g, err := p.group()
		if err != nil {
			return fmt.Errorf("group %d: %w", i, err)
		}
		if len(g.Targets) > 0 {
			gs = append(gs, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gs, p.end()
}

// end checks that nothing but white space follows the list.
func (p *jsonParser) end() error {
	switch _, err := p.lex.peek(); err {
	case io.EOF:
		return nil
	case nil:
		return errors.New("data after the list of target groups")
	default:
		return err
	}
}

func (p *jsonParser) group() (Group, error) {
	c, err := p.lex.peek()
	if err != nil {
		return Group{}, err
	}
	if c != '{' {
		return Group{}, fmt.Errorf(`%s; want a target group such as {"targets": ["db-1:9187"], "labels": {"env": "prod"}}`, p.lex.describe())
	}
	p.addrs, p.n = p.addrs[:0], 0
	var lbls []labels.Label
	err = p.lex.fields(func(key string) error {
		// encoding/json, which Prometheus decodes with, matches field
		// names regardless of case; a repeated field replaces the first.
		switch {
		case strings.EqualFold(key, "targets"):
			return p.targets()
		case strings.EqualFold(key, "labels"):
			var err error
			lbls, err = p.labels()
			return err
		}
		return fmt.Errorf("unknown field %q; want targets and labels", key)
	})
	if err != nil || p.n == 0 {
		return Group{}, err
	}
	if err := p.b.addTargets(p.n); err != nil {
		return Group{}, err
	}
	g := addressGroup(p.addrs[:p.n], groupLabels(lbls, p.meta))
	return g, p.b.addGroup(g)
}

// targets reads the targets list into p.addrs[:p.n], stopping at the
// job's limit.
func (p *jsonParser) targets() error {
	c, err := p.lex.peek()
	switch {
	case err != nil:
		return err
	case c == 'n':
		p.addrs, p.n = p.addrs[:0], 0 // a nil slice: a new array next time
		return p.lex.literal("null")
	case c != '[':
		return fmt.Errorf("targets: %s; want a list of host:port strings", p.lex.describe())
	}
	p.n = 0
	err = p.lex.items('[', ']', func(i int) error {
		s, null, err := p.lex.stringOrNull(false)
		if err != nil {
			return fmt.Errorf("targets[%d]: %w; want a host:port string", i, err)
		}
		if p.b.targets+i >= p.b.maxTargets {
			return p.b.addTargets(i + 1)
		}
		switch {
		case i == len(p.addrs):
			p.addrs = append(p.addrs, s)
		case !null:
			p.addrs[i] = s
		}
		p.n = i + 1
		return nil
	})
	if err == nil && p.n == 0 {
		p.addrs = p.addrs[:0] // [] makes a new, empty slice
	}
	return err
}

// labels reads a group's labels, at most the labels a target may have
// (a repeated name counting again).
func (p *jsonParser) labels() ([]labels.Label, error) {
	c, err := p.lex.peek()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, p.lex.literal("null")
	case c != '{':
		return nil, fmt.Errorf("labels: %s; want an object of label names and string values", p.lex.describe())
	}
	var ls []labels.Label
	err = p.lex.fields(func(name string) error {
		if !labels.IsValidName(name) {
			return fmt.Errorf("labels: %q is not a label name; want [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
		v, _, err := p.lex.stringOrNull(true)
		if err != nil {
			return fmt.Errorf("labels.%s: %w; want a string", name, err)
		}
		ls = append(ls, labels.Label{Name: name, Value: v})
		return p.b.checkGroupLabels(len(ls))
	})
	return ls, err
}

// jsonLexer reads JSON from a buffered reader, a byte at a time.
type jsonLexer struct {
	r   *bufio.Reader
	off int64 // bytes consumed
	sb  []byte
	// interned are label names and values already read: groups repeat
	// them, and share one string each (up to maxInterned of them).
	interned map[string]string
}

const maxInterned = 4096

// maxString bounds a string of a JSON list (a target, a label name or
// value): the buffer that reads one grows by doubling, so a 64 MiB string
// would hold about three times that.
const maxString = 1 << 20

func (l *jsonLexer) read() (byte, error) {
	c, err := l.r.ReadByte()
	if err == nil {
		l.off++
	}
	return c, err
}

// peek returns the next byte after white space, not consuming it.
func (l *jsonLexer) peek() (byte, error) {
	for {
		c, err := l.read()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			_ = l.r.UnreadByte()
			l.off--
			return c, nil
		}
	}
}

// next consumes the next byte after white space.
func (l *jsonLexer) next() (byte, error) {
	if _, err := l.peek(); err != nil {
		return 0, err
	}
	return l.read()
}

// items reads a list or object from open to close, calling f for each item
// (f reads it) with its index.
func (l *jsonLexer) items(open, close byte, f func(i int) error) error {
	if _, err := l.next(); err != nil { // open
		return err
	}
	if c, err := l.peek(); err != nil || c == close {
		_, err = l.next()
		return err
	}
	for i := 0; ; i++ {
		if err := f(i); err != nil {
			return err
		}
		c, err := l.next()
		switch {
		case err != nil:
			return err
		case c == close:
			return nil
		case c != ',':
			return fmt.Errorf("invalid character %q after an item; want ',' or %q", c, close)
		}
	}
}

// fields reads an object, calling f with each key; f reads the value.
func (l *jsonLexer) fields(f func(key string) error) error {
	return l.items('{', '}', func(int) error {
		if c, err := l.peek(); err != nil || c != '"' {
			if err != nil {
				return err
			}
			return fmt.Errorf("invalid character %q; want a field name", c)
		}
		key, err := l.string(true)
		if err != nil {
			return err
		}
		if c, err := l.next(); err != nil || c != ':' {
			if err != nil {
				return err
			}
			return fmt.Errorf("invalid character %q after field %q; want ':'", c, key)
		}
		return f(key)
	})
}

// literal consumes word (null, true, false).
func (l *jsonLexer) literal(word string) error {
	if _, err := l.peek(); err != nil {
		return err
	}
	for i := 0; i < len(word); i++ {
		c, err := l.read()
		if err != nil {
			return err
		}
		if c != word[i] {
			return fmt.Errorf("invalid character %q in literal %s", c, word)
		}
	}
	return nil
}

// str returns the string read into l.sb; an interned one if it was read
// before (the lookup does not allocate).
func (l *jsonLexer) str(intern bool) string {
	if !intern {
		return string(l.sb)
	}
	if s, ok := l.interned[string(l.sb)]; ok {
		return s
	}
	s := string(l.sb)
	if l.interned == nil {
		l.interned = make(map[string]string)
	}
	if len(l.interned) < maxInterned {
		l.interned[s] = s
	}
	return s
}

// stringOrNull reads a string, or null as "" (and null true). Anything
// else is an error that describes it.
func (l *jsonLexer) stringOrNull(intern bool) (s string, null bool, err error) {
	c, err := l.peek()
	switch {
	case err != nil:
		return "", false, err
	case c == '"':
		s, err := l.string(intern)
		return s, false, err
	case c == 'n':
		return "", true, l.literal("null")
	}
	return "", false, errors.New(l.describe())
}

// describe names the value that starts next, for a message: a list, an
// object, a string (quoted, cut), a number, a boolean.
func (l *jsonLexer) describe() string {
	c, err := l.peek()
	switch {
	case err != nil:
		return err.Error()
	case c == '[':
		return "a list"
	case c == '{':
		return "an object"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c == '"':
		s, err := l.string(false)
		if err != nil {
			return err.Error()
		}
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("the string %q", s)
	}
	return fmt.Sprintf("invalid character %q", c)
}

// string reads a string, with encoding/json's decoding: its escapes, a
// lone surrogate and an invalid UTF-8 byte each replaced by U+FFFD;
// interned if intern is set.
func (l *jsonLexer) string(intern bool) (string, error) {
	if _, err := l.next(); err != nil { // "
		return "", err
	}
	l.sb = l.sb[:0]
	for {
		c, err := l.read()
		switch {
		case err != nil:
			return "", err
		case c == '"':
			l.validUTF8()
			return l.str(intern), nil
		case c < 0x20:
			return "", fmt.Errorf("invalid character %q in string literal", c)
		case c == '\\':
			if err := l.escape(); err != nil {
				return "", err
			}
		default:
			l.sb = append(l.sb, c)
		}
		if len(l.sb) > maxString {
			return "", fmt.Errorf("a string longer than %d bytes", maxString)
		}
	}
}

// escape reads an escape sequence after its backslash.
func (l *jsonLexer) escape() error {
	c, err := l.read()
	if err != nil {
		return err
	}
	switch c {
	case '"', '\\', '/':
		l.sb = append(l.sb, c)
	case 'b':
		l.sb = append(l.sb, '\b')
	case 'f':
		l.sb = append(l.sb, '\f')
	case 'n':
		l.sb = append(l.sb, '\n')
	case 'r':
		l.sb = append(l.sb, '\r')
	case 't':
		l.sb = append(l.sb, '\t')
	case 'u':
		r, err := l.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			r = l.lowSurrogate(r)
		}
		l.sb = utf8.AppendRune(l.sb, r)
	default:
		return fmt.Errorf("invalid character %q in string escape code", c)
	}
	return nil
}

// lowSurrogate completes the high surrogate r with a \uXXXX low surrogate
// that follows, if one does; else r stands alone, U+FFFD.
func (l *jsonLexer) lowSurrogate(r rune) rune {
	next, err := l.r.Peek(6)
	if err != nil || next[0] != '\\' || next[1] != 'u' {
		return utf8.RuneError
	}
	var r2 rune
	for _, h := range next[2:] {
		d, ok := hexDigit(h)
		if !ok {
			return utf8.RuneError
		}
		r2 = r2<<4 | d
	}
	dec := utf16.DecodeRune(r, r2)
	if dec == utf8.RuneError {
		return utf8.RuneError
	}
	_, _ = l.r.Discard(6)
	l.off += 6
	return dec
}

func (l *jsonLexer) hex4() (rune, error) {
	var r rune
	for range 4 {
		c, err := l.read()
		if err != nil {
			return 0, err
		}
		d, ok := hexDigit(c)
		if !ok {
			return 0, fmt.Errorf("invalid character %q in \\u hexadecimal character escape", c)
		}
		r = r<<4 | d
	}
	return r, nil
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// validUTF8 replaces each invalid UTF-8 byte of l.sb by U+FFFD.
func (l *jsonLexer) validUTF8() {
	if utf8.Valid(l.sb) {
		return
	}
	out := make([]byte, 0, len(l.sb)+8)
	for i := 0; i < len(l.sb); {
		r, size := utf8.DecodeRune(l.sb[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, l.sb[i:i+size]...)
		}
		i += size
	}
	l.sb = out
}
