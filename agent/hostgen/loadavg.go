package hostgen

import "github.com/procfleet/procfleet/agent/emit"

// loadNames are the series of the three load averages, in file order.
var loadNames = [3]string{"node_load1", "node_load5", "node_load15"}

// parseLoadavg parses the first three fields of /proc/loadavg (named file
// in errors) into loads and reports which of them parsed.
func parseLoadavg(data []byte, file string, fields *[][]byte, loads *[3]float64) (ok [3]bool, err error) {
	errs := lineErrs{file: file}
	// node_exporter splits the whole content, not only its first line.
	f := splitFields(data, *fields)
	*fields = f
	if len(f) < 3 {
		errs.addf(1, "want 3 load averages, got %d fields", len(f))
	}
	for i := 0; i < 3 && i < len(f); i++ {
		x, perr := parseFloat(f[i])
		if perr != nil {
			errs.addf(1, "load average %d: %v", i+1, perr)
			continue
		}
		loads[i], ok[i] = x, true
	}
	return ok, errs.err()
}

// Loadavg emits node_load1, node_load5 and node_load15: what node_exporter's
// loadavg collector emits from /proc/loadavg. It is not safe for concurrent
// use.
type Loadavg struct {
	procFile
	fields [][]byte
}

// NewLoadavg returns a generator of /proc/loadavg under o.ProcRoot.
func NewLoadavg(o Options) *Loadavg {
	o = o.withDefaults()
	g := &Loadavg{
		procFile: newProcFile(512, o.ProcRoot, "loadavg"),
		fields:   make([][]byte, 0, 8),
	}
	return g
}

// Name implements emit.Generator.
func (g *Loadavg) Name() string { return "loadavg" }

// Collect implements emit.Generator.
func (g *Loadavg) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	var loads [3]float64
	ok, err := parseLoadavg(data, g.path, &g.fields, &loads)
	for i, name := range loadNames {
		if ok[i] {
			s.Begin(name).Value(loads[i])
		}
	}
	return err
}
