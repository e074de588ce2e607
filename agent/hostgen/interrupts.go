package hostgen

import (
	"bytes"
	"path/filepath"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// interruptRow is one parsed row of /proc/interrupts. Its slices point into
// the parser's input and scratch buffers and are valid until the next parse.
type interruptRow struct {
	name    []byte   // the "type" label: the text before the colon
	info    []byte   // the "info" label
	devices []byte   // the "devices" label
	values  [][]byte // one per CPU column of the header, unparsed
	line    int      // 1-based line number, for errors
}

// interruptsParse holds parseInterrupts' output and reused buffers.
type interruptsParse struct {
	rows   []interruptRow
	fields [][]byte
	vals   [][]byte // backing store of the rows' values
	text   []byte   // backing store of the joined info and devices labels
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
		// node_exporter tells numbered rows with strconv.Atoi.
		if isAtoi(row.name) {
			row.info = p.appendJoined(f[cpus : cpus+1])
			row.devices = p.appendJoined(f[cpus+1:])
		} else {
			row.info = p.appendJoined(f[cpus:])
		}
		p.rows = append(p.rows, row)
	}
	return cpus, nil
}

// appendJoined appends fields joined by single spaces to p.text and returns
// the appended part.
func (p *interruptsParse) appendJoined(fields [][]byte) []byte {
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
	path   string
	pathz  []byte // path ending in NUL, for ReadZ
	r      *procfile.Reader
	p      interruptsParse
	labels numLabels
	esc    []byte // the escaped labels of the row being emitted
}

// NewInterrupts returns a generator of /proc/interrupts under o.ProcRoot.
func NewInterrupts(o Options) *Interrupts {
	o = o.withDefaults()
	g := &Interrupts{
		path: filepath.Join(o.ProcRoot, "interrupts"),
		r:    procfile.NewReader(16 << 10),
	}
	g.pathz = zpath(g.path)
	return g
}

// Name implements emit.Generator.
func (g *Interrupts) Name() string { return "interrupts" }

// Collect implements emit.Generator.
func (g *Interrupts) Collect(s *emit.Scan) error {
	data, err := g.r.ReadZ(g.pathz, 0)
	if err != nil {
		return err
	}
	if _, err := parseInterrupts(data, g.path, &g.p); err != nil {
		return err
	}
	errs := lineErrs{file: g.path}
	for i := range g.p.rows {
		row := &g.p.rows[i]
		// Escape the row's labels once for all its CPUs.
		g.esc = emit.AppendEscapedBytes(g.esc[:0], row.name)
		nName := len(g.esc)
		g.esc = emit.AppendEscapedBytes(g.esc, row.info)
		nInfo := len(g.esc)
		g.esc = emit.AppendEscapedBytes(g.esc, row.devices)
		name, info, devices := g.esc[:nName], g.esc[nName:nInfo], g.esc[nInfo:]
		for cpu, b := range row.values {
			v, verr := parseFloatLike(b)
			if verr != nil {
				errs.addf(row.line, "%s CPU column %d: %v", row.name, cpu, verr)
				continue
			}
			s.Begin("node_interrupts_total").Label("cpu", g.labels.get(cpu)).
				LabelEscaped("type", name).LabelEscaped("info", info).
				LabelEscaped("devices", devices).Value(v)
		}
	}
	return errs.err()
}
