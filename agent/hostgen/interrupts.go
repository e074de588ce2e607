package hostgen

import (
	"bytes"
	"encoding/binary"

	"github.com/procfleet/procfleet/agent/emit"
)

// interruptRow is one parsed row of /proc/interrupts. Its slices point into
// the parser's input and scratch buffers and are valid until the next parse.
type interruptRow struct {
	name    []byte   // the "type" label: the text before the colon
	info    []byte   // the "info" label
	devices []byte   // the "devices" label
	values  [][]byte // one per CPU column of the header, unparsed
	line    int      // 1-based line number, for errors
	// id is the row's identity, name, info and devices with their
	// lengths, which keys the cache of its series prefix.
	id []byte
}

// interruptsParse holds parseInterrupts' output and reused buffers.
type interruptsParse struct {
	rows   []interruptRow
	fields [][]byte
	vals   [][]byte // backing store of the rows' values
	text   []byte   // backing store of the rows' identities and joined labels
}

// parseInterrupts parses /proc/interrupts (named file in errors) into p as
// node_exporter does and returns the number of CPU columns, which is the
// number of fields of the header. A row reads "name: v0 .. vN-1 details";
// rows with fewer than N+1 fields after the colon (ERR, MIS) and lines
// without a colon are ignored. For a numbered row the first detail is the
// info label and the others, joined by single spaces, are the devices
// label; for a named row all details, joined, are the info label. Values
// are left unparsed for the caller.
//
// Slices taken from p.vals and p.text stay valid when a later append moves
// the buffer: the old array keeps its content and is not written again.
func parseInterrupts(data []byte, file string, p *interruptsParse) (cpus int, err error) {
	p.rows, p.vals, p.text = p.rows[:0], p.vals[:0], p.text[:0]
	if len(data) == 0 {
		errs := lineErrs{file: file}
		errs.add(1, errEmpty)
		return 0, errs.err()
	}
	header, data := nextLine(data)
	p.fields = splitFields(header, p.fields)
	cpus = len(p.fields)
	for n := 2; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		f := splitFields(line[colon+1:], p.fields)
		p.fields = f
		if len(f) < cpus+1 {
			continue
		}
		row := interruptRow{name: bytes.TrimLeft(line[:colon], " "), line: n}
		start := len(p.vals)
		p.vals = append(p.vals, f[:cpus]...)
		row.values = p.vals[start:len(p.vals):len(p.vals)]
		p.appendLabels(&row, f[cpus:])
		p.rows = append(p.rows, row)
	}
	return cpus, nil
}

// appendLabels sets row's info and devices labels from the details after
// its values, and its identity.
func (p *interruptsParse) appendLabels(row *interruptRow, details [][]byte) {
	start := len(p.text)
	p.text = binary.AppendUvarint(p.text, uint64(len(row.name)))
	p.text = append(p.text, row.name...)
	// node_exporter tells numbered rows with strconv.Atoi.
	if isAtoi(row.name) {
		row.info = p.appendJoined(details[:1])
		row.devices = p.appendJoined(details[1:])
	} else {
		row.info = p.appendJoined(details)
	}
	row.id = p.text[start:len(p.text):len(p.text)]
}

// appendJoined appends fields joined by single spaces, after their length,
// to p.text and returns the fields' part.
func (p *interruptsParse) appendJoined(fields [][]byte) []byte {
	n := max(len(fields)-1, 0)
	for _, f := range fields {
		n += len(f)
	}
	p.text = binary.AppendUvarint(p.text, uint64(n))
	start := len(p.text)
	for i, f := range fields {
		if i > 0 {
			p.text = append(p.text, ' ')
		}
		p.text = append(p.text, f...)
	}
	return p.text[start:len(p.text):len(p.text)]
}

// Interrupts emits node_interrupts_total{cpu,type,info,devices}: what
// node_exporter's interrupts collector emits from /proc/interrupts with its
// default flags (no name filter, zeros included). The cpu label is the
// column's position, as in node_exporter, not the number in the header.
// When two rows have the same name node_exporter keeps only the last; this
// generator emits both (the kernel never writes such a file).
//
// An Interrupts is not safe for concurrent use.
type Interrupts struct {
	procFile
	p      interruptsParse
	labels numLabels
	// prefixes caches, by row, the series prefix (name, type, info and
	// devices labels) of the row last seen there.
	prefixes rowCache[emit.Prefix]
}

// NewInterrupts returns a generator of /proc/interrupts under o.ProcRoot.
func NewInterrupts(o Options) *Interrupts {
	o = o.withDefaults()
	g := &Interrupts{
		procFile: newProcFile(16<<10, o.ProcRoot, "interrupts"),
	}
	return g
}

// Name implements emit.Generator.
func (g *Interrupts) Name() string { return "interrupts" }

// Collect implements emit.Generator.
func (g *Interrupts) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	if _, err := parseInterrupts(data, g.path, &g.p); err != nil {
		return err
	}
	errs := lineErrs{file: g.path}
	g.prefixes.truncate(len(g.p.rows))
	for i := range g.p.rows {
		row := &g.p.rows[i]
		pre, hit := g.prefixes.at(i, row.id)
		if !hit {
			s.Begin("node_interrupts_total").LabelBytes("type", row.name).
				LabelBytes("info", row.info).LabelBytes("devices", row.devices).SavePrefix(pre)
		}
		for cpu, b := range row.values {
			v, verr := parseFloat(b)
			if verr != nil {
				errs.addf(row.line, "%s CPU column %d: %v", row.name, cpu, verr)
				continue
			}
			s.BeginPrefix(pre).Label("cpu", g.labels.get(cpu)).Value(v)
		}
	}
	return errs.err()
}
