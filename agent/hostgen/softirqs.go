package hostgen

import (
	"math"

	"github.com/procfleet/procfleet/agent/emit"
)

// softirqTypes are the rows of /proc/softirqs that procfs knows, with their
// colon, and the type label node_exporter gives each, in its order.
var softirqTypes = [10][2]string{
	{"HI:", "HI"}, {"TIMER:", "TIMER"}, {"NET_TX:", "NET_TX"}, {"NET_RX:", "NET_RX"},
	{"BLOCK:", "BLOCK"}, {"IRQ_POLL:", "IRQ_POLL"}, {"TASKLET:", "TASKLET"},
	{"SCHED:", "SCHED"}, {"HRTIMER:", "HRTIMER"}, {"RCU:", "RCU"},
}

// softirqsParse holds parseSoftirqs' output and reused buffers.
type softirqsParse struct {
	// counts holds, for each of softirqTypes, the per-CPU counts of its
	// row; nil when the row is missing or bad.
	counts [10][]uint64
	has    [10]bool
	fields [][]byte
}

// parseSoftirqs parses /proc/softirqs (named file in errors) into p as
// procfs does: the first line (the CPU header) is skipped, lines with fewer
// than two fields or an unknown name are ignored, and each known row gives
// one count per field after its name (the header is not consulted). A bad
// row is skipped and reported.
func parseSoftirqs(data []byte, file string, p *softirqsParse) error {
	errs := lineErrs{file: file}
	p.has = [10]bool{}
	if len(data) == 0 {
		errs.add(1, errEmpty)
		return errs.err()
	}
	_, data = nextLine(data)
	for n := 2; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		if p.fast(line) {
			continue
		}
		f := splitFields(line, p.fields)
		p.fields = f
		if len(f) < 2 {
			continue
		}
		t := softirqType(f[0])
		if t < 0 {
			continue
		}
		c := p.counts[t][:0]
		ok := true
		for i, b := range f[1:] {
			u, err := parseUint(b)
			if err != nil {
				errs.addf(n, "%s CPU column %d: %v", softirqTypes[t][1], i, err)
				ok = false
				break
			}
			c = append(c, u)
		}
		p.counts[t] = c
		p.has[t] = ok
	}
	return errs.err()
}

// softirqType returns the index in softirqTypes of the row name (with its
// colon), or -1.
func softirqType(name []byte) int {
	for i := range softirqTypes {
		if string(name) == softirqTypes[i][0] {
			return i
		}
	}
	return -1
}

// fast parses a row of plain decimal counts, or a row to ignore, the fast
// way and reports whether it could; parseSoftirqs takes the others.
func (p *softirqsParse) fast(line []byte) bool {
	i := skipASCIISpace(line, 0)
	j := skipASCIIWord(line, i)
	if j < len(line) && byteClass[line[j]] == classHigh {
		return false
	}
	t := softirqType(line[i:j])
	if t < 0 {
		return true
	}
	c, _, ok := appendUints(p.counts[t][:0], line[j:], math.MaxInt)
	if !ok {
		return false
	}
	if len(c) > 0 { // else fewer than two fields: ignored
		p.counts[t], p.has[t] = c, true
	}
	return true
}

// Softirqs emits node_softirqs_functions_total{cpu,type}: what
// node_exporter's softirqs collector emits from /proc/softirqs. The cpu
// label is the column's position, as in node_exporter. It is not safe for
// concurrent use.
type Softirqs struct {
	procFile
	p      softirqsParse
	labels numLabels
	// prefixes are the series prefixes (name and type label) of the rows
	// of softirqTypes, built on the first Collect.
	prefixes [len(softirqTypes)]emit.Prefix
}

// NewSoftirqs returns a generator of /proc/softirqs under o.ProcRoot.
func NewSoftirqs(o Options) *Softirqs {
	o = o.withDefaults()
	g := &Softirqs{
		procFile: newProcFile(4<<10, o.ProcRoot, "softirqs"),
	}
	return g
}

// Name implements emit.Generator.
func (g *Softirqs) Name() string { return "softirqs" }

// Collect implements emit.Generator.
func (g *Softirqs) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	err = parseSoftirqs(data, g.path, &g.p)
	for t := range softirqTypes {
		if !g.p.has[t] {
			continue
		}
		pre := &g.prefixes[t]
		if pre.Empty() {
			s.Begin("node_softirqs_functions_total").Label("type", softirqTypes[t][1]).SavePrefix(pre)
		}
		for cpu, u := range g.p.counts[t] {
			s.BeginPrefix(pre).Label("cpu", g.labels.get(cpu)).Value(float64(u))
		}
	}
	return err
}
