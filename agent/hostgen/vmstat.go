package hostgen

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
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

// parseVmstat parses /proc/vmstat (named file in errors) as node_exporter
// does and calls fn for each "name value" line with the value parsed as
// strconv.ParseFloat parses it. Extra fields are ignored; a line with fewer
// than two fields or a bad value is skipped and reported.
func parseVmstat(data []byte, file string, fields *[][]byte, fn func(line int, name []byte, v float64)) error {
	errs := lineErrs{file: file}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		f := splitFields(line, *fields)
		*fields = f
		if len(f) < 2 {
			errs.addf(n, "want \"name value\", got %q", line)
			continue
		}
		v, err := parseFloatLike(f[1])
		if err != nil {
			errs.addf(n, "%s: %v", f[0], err)
			continue
		}
		fn(n, f[0], v)
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

	path   string
	pathz  []byte // path ending in NUL, for ReadZ
	r      *procfile.Reader
	fields [][]byte
	scan   *emit.Scan
	fn     func(line int, name []byte, v float64)
	name   []byte // node_vmstat_<field> being built
	// badLine is the first line whose field matched but cannot be part of
	// a metric name.
	badLine int

	// lastName and lastKeep remember, by line, the field last seen there and
	// whether it matched, so that the filter runs only when the file
	// changes shape.
	lastName []string
	lastKeep []bool
}

// NewVmstat returns a generator of /proc/vmstat under o.ProcRoot.
func NewVmstat(o Options) *Vmstat {
	o = o.withDefaults()
	g := &Vmstat{
		path:   filepath.Join(o.ProcRoot, "vmstat"),
		r:      procfile.NewReader(8 << 10),
		fields: make([][]byte, 0, 8),
		name:   make([]byte, 0, 64),
	}
	g.pathz = zpath(g.path)
	g.fn = g.emit
	return g
}

// Name implements emit.Generator.
func (g *Vmstat) Name() string { return "vmstat" }

// Collect implements emit.Generator.
func (g *Vmstat) Collect(s *emit.Scan) error {
	data, err := g.r.ReadZ(g.pathz, 0)
	if err != nil {
		return err
	}
	g.scan = s
	g.badLine = 0
	err = parseVmstat(data, g.path, &g.fields, g.fn)
	g.scan = nil
	if err == nil && g.badLine > 0 {
		err = fmt.Errorf("parse %s line %d: field name is not valid in a metric name", g.path, g.badLine)
	}
	return err
}

func (g *Vmstat) emit(line int, name []byte, v float64) {
	i := line - 1
	for len(g.lastName) <= i {
		g.lastName = append(g.lastName, "")
		g.lastKeep = append(g.lastKeep, false)
	}
	if g.lastName[i] != string(name) {
		keep := false
		if g.Fields != nil {
			keep = g.Fields.Match(name)
		} else {
			keep = vmstatDefaultMatch(name)
		}
		g.lastName[i], g.lastKeep[i] = string(name), keep
	}
	if !g.lastKeep[i] {
		return
	}
	if !validMetricSuffix(name) {
		if g.badLine == 0 {
			g.badLine = line
		}
		return
	}
	g.name = append(append(g.name[:0], "node_vmstat_"...), name...)
	g.scan.BeginBytes(g.name).Value(v)
}
