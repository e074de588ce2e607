package hostgen

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/procfleet/procfleet/agent/emit"
)

// VmstatDefaultFields is node_exporter's default for
// --collector.vmstat.fields: the /proc/vmstat fields it exports.
const VmstatDefaultFields = "^(oom_kill|pgpg|pswp|pg.*fault).*"

// vmstatDefaultMatch is VmstatDefaultFields written out by hand, so that the
// default costs no regular expression matching.
func vmstatDefaultMatch(name []byte) bool {
	return bytes.HasPrefix(name, []byte("oom_kill")) ||
		bytes.HasPrefix(name, []byte("pgpg")) ||
		bytes.HasPrefix(name, []byte("pswp")) ||
		(bytes.HasPrefix(name, []byte("pg")) && bytes.Contains(name[2:], []byte("fault")))
}

// vmstatFilter decides which fields of /proc/vmstat are exported. It
// remembers, line by line, the field last seen there and whether it is
// kept, so that the filter runs only when the file changes shape, and so
// that a line whose field is known is read without splitting it.
type vmstatFilter struct {
	re   *regexp.Regexp // nil: VmstatDefaultFields
	keep rowCache[bool]
}

// decide reports whether the field name on line i (0-based) is kept.
func (f *vmstatFilter) decide(i int, name []byte) bool {
	keep, hit := f.keep.at(i, name)
	if !hit {
		if f.re != nil {
			*keep = f.re.Match(name)
		} else {
			*keep = vmstatDefaultMatch(name)
		}
	}
	return *keep
}

// parseVmstat parses /proc/vmstat (named file in errors) as node_exporter
// does and calls fn for each "name value" line whose field the filter keeps,
// with the value parsed as strconv.ParseFloat parses it. Extra fields are
// ignored; a line with fewer than two fields or a bad value is skipped and
// reported, whether the filter keeps its field or not: node_exporter fails
// on either.
func parseVmstat(data []byte, file string, filter *vmstatFilter, fn func(line int, name []byte, v float64)) error {
	errs := lineErrs{file: file}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		// The common case: the field seen on this line last time, then
		// plain digits to the end of the line.
		if keep, rest, ok := filter.keep.lead(n-1, line); ok {
			if u, ok := decimalUint(rest[skipASCIISpace(rest, 0):]); ok {
				if *keep {
					fn(n, line[:len(line)-len(rest)], float64(u))
				}
				continue
			}
		}
		name, val, ok := firstTwoFields(line)
		if !ok {
			errs.addf(n, "want \"name value\", got %q", line)
			continue
		}
		keep := filter.decide(n-1, name)
		v, err := parseFloat(val)
		if err != nil {
			errs.addf(n, "%s: %v", name, err)
			continue
		}
		if keep {
			fn(n, name, v)
		}
	}
	return errs.err()
}

// Vmstat emits node_vmstat_<field> for the /proc/vmstat fields that match
// its field filter: what node_exporter's vmstat collector emits. It is not
// safe for concurrent use.
type Vmstat struct {
	// Fields selects the fields to export, as --collector.vmstat.fields
	// does. nil means VmstatDefaultFields. Set it before the first Collect.
	Fields *regexp.Regexp

	procFile
	scan *emit.Scan
	fn   func(line int, name []byte, v float64)
	name []byte // node_vmstat_<field> being built
	// badLine is the first line whose field matched but cannot be part of
	// a metric name.
	badLine int

	filter vmstatFilter
}

// NewVmstat returns a generator of /proc/vmstat under o.ProcRoot.
func NewVmstat(o Options) *Vmstat {
	o = o.withDefaults()
	g := &Vmstat{
		procFile: newProcFile(8<<10, o.ProcRoot, "vmstat"),
		name:     make([]byte, 0, 64),
	}
	g.fn = g.emit
	return g
}

// Name implements emit.Generator.
func (g *Vmstat) Name() string { return "vmstat" }

// Collect implements emit.Generator.
func (g *Vmstat) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	g.scan = s
	g.badLine = 0
	if g.filter.re != g.Fields {
		g.filter = vmstatFilter{re: g.Fields}
	}
	err = parseVmstat(data, g.path, &g.filter, g.fn)
	g.scan = nil
	if err == nil && g.badLine > 0 {
		err = fmt.Errorf("parse %s line %d: field name is not valid in a metric name", g.path, g.badLine)
	}
	return err
}

func (g *Vmstat) emit(line int, name []byte, v float64) {
	if !validMetricSuffix(name) {
		if g.badLine == 0 {
			g.badLine = line
		}
		return
	}
	g.name = append(append(g.name[:0], "node_vmstat_"...), name...)
	g.scan.BeginBytes(g.name).Value(v)
}
