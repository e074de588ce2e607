package hostgen

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// psiLine is the total of one "some" or "full" line of a /proc/pressure
// file, in microseconds.
type psiLine struct {
	total uint64
	ok    bool // the line was there and parsed
}

// parsePressure parses one /proc/pressure/<resource> file (named file in
// errors) as procfs does: a line whose text up to the first space is "some"
// or "full" must read "avg10=F avg60=F avg300=F total=N"; other lines are
// ignored. A bad line is skipped and reported.
func parsePressure(data []byte, file string, fields *[][]byte) (some, full psiLine, err error) {
	errs := lineErrs{file: file}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		prefix := line
		if i := bytes.IndexByte(line, ' '); i >= 0 {
			prefix = line[:i]
		}
		var dst *psiLine
		switch string(prefix) {
		case "some":
			dst = &some
		case "full":
			dst = &full
		default:
			continue
		}
		f := splitFields(line, *fields)
		*fields = f
		total, perr := parsePSIFields(f)
		if perr != "" {
			errs.addf(n, "%s: %s", prefix, perr)
			*dst = psiLine{}
			continue
		}
		*dst = psiLine{total: total, ok: true}
	}
	return some, full, errs.err()
}

// psiKeys are the keys of a pressure line after its "some" or "full".
var psiKeys = [4]string{"avg10=", "avg60=", "avg300=", "total="}

// parsePSIFields checks the fields of one pressure line and returns its
// total, or what was wrong.
func parsePSIFields(f [][]byte) (uint64, string) {
	if len(f) < 5 {
		return 0, "want avg10=F avg60=F avg300=F total=N"
	}
	var total uint64
	for i, k := range psiKeys {
		b := f[i+1]
		if len(b) < len(k) || string(b[:len(k)]) != k {
			return 0, "want " + k + " in field " + string(rune('2'+i))
		}
		b = b[len(k):]
		if i == 3 {
			u, err := parseUint(b)
			if err != nil {
				return 0, err.Error()
			}
			total = u
			continue
		}
		if _, err := parseFloat(b); err != nil {
			return 0, err.Error()
		}
	}
	return total, ""
}

// psiResource is one file of /proc/pressure and what node_exporter makes
// of it.
type psiResource struct {
	file     string
	some     string // series of the "some" total; "" when not exported
	full     string // series of the "full" total; "" when not exported
	needSome bool
	needFull bool
}

// psiResources are the resources node_exporter reads, in its order.
var psiResources = [4]psiResource{
	{"cpu", "node_pressure_cpu_waiting_seconds_total", "", true, false},
	{"io", "node_pressure_io_waiting_seconds_total", "node_pressure_io_stalled_seconds_total", true, true},
	{"memory", "node_pressure_memory_waiting_seconds_total", "node_pressure_memory_stalled_seconds_total", true, true},
	{"irq", "", "node_pressure_irq_stalled_seconds_total", false, true},
}

// Pressure emits node_pressure_*: what node_exporter's pressure collector
// emits from /proc/pressure/{cpu,io,memory,irq}.
//
// As in node_exporter, a missing file is skipped silently (the kernel is
// older than 4.20, or than 6.1 for irq, or lacks CONFIG_PSI), and a file
// that refuses reads with EOPNOTSUPP (psi=0 on the kernel command line) ends
// the scan silently. Unlike node_exporter, which stops at the first bad
// file, other errors are reported and the remaining files are still read;
// a file lacking a line node_exporter needs ("some", or "full" but for cpu)
// is reported and its series are left out, as node_exporter leaves them out.
//
// A Pressure is not safe for concurrent use.
type Pressure struct {
	paths  [4]string
	files  [4]procfile.Kept
	r      *procfile.Reader
	fields [][]byte
}

// NewPressure returns a generator of /proc/pressure under o.ProcRoot.
func NewPressure(o Options) *Pressure {
	o = o.withDefaults()
	g := &Pressure{r: procfile.NewReader(512), fields: make([][]byte, 0, 8)}
	for i, res := range psiResources {
		g.paths[i] = filepath.Join(o.ProcRoot, "pressure", res.file)
		g.files[i] = procfile.NewKept(g.paths[i])
	}
	return g
}

// Name implements emit.Generator.
func (g *Pressure) Name() string { return "pressure" }

// Close releases the files' kept descriptors.
func (g *Pressure) Close() error { return closeKept(g.files[:]) }

// Collect implements emit.Generator.
func (g *Pressure) Collect(s *emit.Scan) error {
	var errs []error
	for i, res := range psiResources {
		data, err := g.r.ReadKept(&g.files[i])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, syscall.EOPNOTSUPP) {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		some, full, err := parsePressure(data, g.paths[i], &g.fields)
		if err != nil {
			errs = append(errs, err)
		}
		if res.needSome && !some.ok || res.needFull && !full.ok {
			if err == nil {
				errs = append(errs, errPSIMissing(g.paths[i], res.needSome && !some.ok))
			}
			continue
		}
		if res.some != "" {
			s.Begin(res.some).Value(float64(some.total) / 1000.0 / 1000.0)
		}
		if res.full != "" {
			s.Begin(res.full).Value(float64(full.total) / 1000.0 / 1000.0)
		}
	}
	return errors.Join(errs...)
}

func errPSIMissing(file string, some bool) error {
	what := "full"
	if some {
		what = "some"
	}
	return errors.New("parse " + file + ": no valid \"" + what + "\" line")
}
