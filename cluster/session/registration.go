package session

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	promlabels "github.com/procfleet/procfleet/prom/labels"
)

// Registration is what the other members of a cluster use of a Member:
// every member holds one for each of the others, so it keeps only the
// fields they read. The member key's JSON is Member's.
type Registration struct {
	// Address is Member.Address: where the member's gossip listens.
	Address string
	// StartTime is Member.StartTime.
	StartTime time.Time
	// Labels are Member.Labels, sorted by name: nil when the value has
	// none or null, empty (not nil) when it has {}. They belong to the
	// parser, valid until its next Parse.
	Labels []Label
}

// Label is one of a member's labels.
type Label = promlabels.Label

// A RegistrationParser decodes the values of member keys into
// Registrations. It takes the values ParseMember takes and refuses those
// it refuses, with the same Address, StartTime and labels, but allocates
// only the address of each: it reuses its buffers, and the label names
// and values it has seen, which the labels of many members repeat. A
// member's watch takes a value per membership event; encoding/json took
// about ten allocations for each. It is not safe for concurrent use.
type RegistrationParser struct {
	buf    []byte  // a string being unescaped
	labels []Label // the labels of the last value
	// strs are label names and values seen, shared by the Registrations;
	// emptied past maxParserStrings.
	strs map[string]string
}

// maxParserStrings bounds the label strings a RegistrationParser keeps.
const maxParserStrings = 4096

// maxDepth is encoding/json's bound on the nesting of a value.
const maxDepth = 10000

var (
	errSyntax    = errors.New("invalid JSON")
	errDepth     = errors.New("exceeded max depth")
	errNotString = errors.New("not a JSON string")
	errNotObject = errors.New("not a JSON object")
)

// Parse decodes the value of a member key.
func (p *RegistrationParser) Parse(data []byte) (Registration, error) {
	d := decoder{data: data, p: p}
	r, err := d.registration()
	if err == nil {
		d.ws()
		if d.i != len(d.data) {
			err = errSyntax
		}
	}
	if err != nil {
		return Registration{}, fmt.Errorf("cannot parse member %q: %w (at byte %d)", data, err, d.i)
	}
	return r, nil
}

// decoder reads one value, as encoding/json's Unmarshal into a Member
// does: field names of any case (as bytes.EqualFold compares them), the
// last of a repeated field (labels merged, as into a map), null for
// leaving a field as it is (labels: none), invalid UTF-8 and lone
// surrogates in strings replaced by U+FFFD, and the whole input valid
// JSON.
type decoder struct {
	data []byte
	i    int
	p    *RegistrationParser
}

func (d *decoder) registration() (Registration, error) {
	var r Registration
	d.ws()
	if d.literal("null") {
		return r, nil
	}
	if !d.consume('{') {
		if _, err := d.skip(0); err != nil {
			return r, err
		}
		return r, errNotObject
	}
	p := d.p
	p.labels = p.labels[:0]
	hasLabels := false
	err := d.members(func(name []byte) error {
		switch {
		case bytes.EqualFold(name, []byte("address")):
			s, null, err := d.string()
			if err == nil && !null {
				r.Address = string(s)
			}
			return err
		case bytes.EqualFold(name, []byte("http")), bytes.EqualFold(name, []byte("version")), bytes.EqualFold(name, []byte("kind")):
			_, _, err := d.string()
			return err
		case bytes.EqualFold(name, []byte("start_time")):
			raw, err := d.skip(1)
			if err == nil {
				err = r.StartTime.UnmarshalJSON(raw)
			}
			return err
		case bytes.EqualFold(name, []byte("labels")):
			d.ws()
			if d.literal("null") {
				p.labels, hasLabels = p.labels[:0], false
				return nil
			}
			hasLabels = true
			return d.labels()
		}
		_, err := d.skip(1)
		return err
	})
	if err != nil {
		return Registration{}, err
	}
	if hasLabels {
		if p.labels == nil {
			p.labels = make([]Label, 0, 8)
		}
		r.Labels = promlabels.FromUnsorted(p.labels) // the last of each name, as a map keeps it
	}
	return r, nil
}

// members reads the members of an object whose '{' was read, calling
// field with each name (valid until the next read) with the decoder at
// its value, which field reads.
func (d *decoder) members(field func(name []byte) error) error {
	d.ws()
	if d.consume('}') {
		return nil
	}
	for {
		d.ws()
		name, ok := d.str()
		if !ok {
			return errSyntax
		}
		d.ws()
		if !d.consume(':') {
			return errSyntax
		}
		d.ws()
		if err := field(name); err != nil {
			return err
		}
		d.ws()
		if d.consume('}') {
			return nil
		}
		if !d.consume(',') {
			return errSyntax
		}
	}
}

// labels reads an object of labels into d.p.labels, after those of an
// earlier labels field of the value.
func (d *decoder) labels() error {
	if !d.consume('{') {
		if _, err := d.skip(1); err != nil {
			return err
		}
		return errNotObject
	}
	p := d.p
	return d.members(func(name []byte) error {
		n := p.intern(name)
		v, null, err := d.string()
		if err != nil {
			return err
		}
		value := ""
		if !null {
			value = p.intern(v)
		}
		p.labels = append(p.labels, Label{Name: n, Value: value})
		return nil
	})
}

// intern returns b as a string, shared with the earlier ones of the same
// bytes.
func (p *RegistrationParser) intern(b []byte) string {
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	if p.strs == nil || len(p.strs) >= maxParserStrings {
		p.strs = make(map[string]string)
	}
	s := string(b)
	p.strs[s] = s
	return s
}

// string reads a JSON string or null; any other value is an error, after
// it was checked.
func (d *decoder) string() (s []byte, null bool, err error) {
	d.ws()
	if d.literal("null") {
		return nil, true, nil
	}
	if d.i < len(d.data) && d.data[d.i] == '"' {
		s, ok := d.str()
		if !ok {
			return nil, false, errSyntax
		}
		return s, false, nil
	}
	if _, err := d.skip(1); err != nil {
		return nil, false, err
	}
	return nil, false, errNotString
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) consume(c byte) bool {
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) literal(lit string) bool {
	if bytes.HasPrefix(d.data[d.i:], []byte(lit)) {
		d.i += len(lit)
		return true
	}
	return false
}

// skip checks the value at d (whitespace before it skipped), nested in
// depth objects and arrays, and returns its bytes.
func (d *decoder) skip(depth int) ([]byte, error) {
	d.ws()
	start := d.i
	if d.i >= len(d.data) {
		return nil, errSyntax
	}
	switch c := d.data[d.i]; {
	case c == '{' || c == '[':
		if depth+1 > maxDepth {
			return nil, errDepth
		}
		d.i++
		if err := d.container(c, depth+1); err != nil {
			return nil, err
		}
	case c == '"':
		if _, ok := d.str(); !ok {
			return nil, errSyntax
		}
	case c == '-' || '0' <= c && c <= '9':
		if !d.number() {
			return nil, errSyntax
		}
	case d.literal("true"), d.literal("false"), d.literal("null"):
	default:
		return nil, errSyntax
	}
	return d.data[start:d.i], nil
}

// container checks the rest of an object or array, open is its first
// byte, already read.
func (d *decoder) container(open byte, depth int) error {
	if open == '{' {
		return d.members(func([]byte) error { _, err := d.skip(depth); return err })
	}
	d.ws()
	if d.consume(']') {
		return nil
	}
	for {
		if _, err := d.skip(depth); err != nil {
			return err
		}
		d.ws()
		if d.consume(']') {
			return nil
		}
		if !d.consume(',') {
			return errSyntax
		}
	}
}

// number reads a JSON number.
func (d *decoder) number() bool {
	d.consume('-')
	switch {
	case d.consume('0'):
	case d.digits() == 0:
		return false
	}
	if d.consume('.') && d.digits() == 0 {
		return false
	}
	if d.consume('e') || d.consume('E') {
		if !d.consume('+') {
			d.consume('-')
		}
		if d.digits() == 0 {
			return false
		}
	}
	return true
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.data) && '0' <= d.data[d.i] && d.data[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// str reads a JSON string at d and returns its text, unescaped as
// encoding/json does: in d.data when it has no escape and is valid UTF-8,
// else in d.p.buf; either is valid until the next read.
func (d *decoder) str() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return d.data[start : d.i-1], true
		case c == '\\' || c < ' ':
			return d.strSlow(start)
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, n := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && n == 1 {
				return d.strSlow(start)
			}
			d.i += n
		}
	}
	return nil, false
}

// strSlow is str for a string with escapes or invalid UTF-8, from start,
// just after its quote.
func (d *decoder) strSlow(start int) ([]byte, bool) {
	b := append(d.p.buf[:0], d.data[start:d.i]...)
	defer func() { d.p.buf = b[:0] }()
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return b, true
		case c < ' ':
			return nil, false
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return nil, false
			}
			e := d.data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := d.u4()
				if r < 0 {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					// A pair when the next escape is its other half: not
					// an error otherwise, but U+FFFD, and the next
					// escape read on its own.
					save := d.i
					if d.consume('\\') && d.consume('u') {
						if r2 := d.u4(); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
								b = utf8.AppendRune(b, dec)
								continue
							}
						}
					}
					d.i = save
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, false
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, n := utf8.DecodeRune(d.data[d.i:])
			d.i += n
			b = utf8.AppendRune(b, r)
		}
	}
	return nil, false
}

// u4 reads the four hex digits of a \u escape: -1 when they are not.
func (d *decoder) u4() rune {
	if d.i+4 > len(d.data) {
		return -1
	}
	var r rune
	for _, c := range d.data[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	d.i += 4
	return r
}
