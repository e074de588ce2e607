package hostgen

import (
	"bytes"
	"fmt"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// userHZ is the kernel's USER_HZ, the unit of the times in /proc/stat. It is
// 100 on every architecture Linux supports, and procfs assumes the same.
const userHZ = 100

// cpuModes are the columns of a cpu line of /proc/stat, in file order.
const (
	cpuUser = iota
	cpuNice
	cpuSystem
	cpuIdle
	cpuIowait
	cpuIRQ
	cpuSoftIRQ
	cpuSteal
	cpuGuest
	cpuGuestNice
	cpuColumns
)

// cpuModeNames are the mode labels of node_cpu_seconds_total, in file order.
var cpuModeNames = [cpuGuest]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// softirqVectors are the vector labels of node_softirqs_total, in the order
// of the softirq line of /proc/stat.
var softirqVectors = [10]string{"hi", "timer", "net_tx", "net_rx", "block", "block_iopoll", "tasklet", "sched", "hrtimer", "rcu"}

// jumpBackSeconds is how far a CPU's idle time may go backwards before
// node_exporter takes it for a CPU that was unplugged and plugged back, and
// starts that CPU afresh.
const jumpBackSeconds = 3.0

// cpuTimes is one per-CPU line of /proc/stat, in seconds.
type cpuTimes struct {
	id int64
	t  [cpuColumns]float64
}

// statSingles indexes the single-valued lines of /proc/stat.
const (
	statIntr = iota
	statCtxt
	statForks
	statBtime
	statRunning
	statBlocked
	statSingleCount
)

// statSingleNames are the series of the single-valued lines, by index.
var statSingleNames = [statSingleCount]string{
	"node_intr_total", "node_context_switches_total", "node_forks_total",
	"node_boot_time_seconds", "node_procs_running", "node_procs_blocked",
}

// statValues is what parseStat fills. It is reused from scan to scan.
type statValues struct {
	cpus    []cpuTimes
	single  [statSingleCount]uint64
	bad     [statSingleCount]bool // the line was there but malformed
	softirq [10]uint64
	hasSoft bool
}

// statKeys maps the first field of a single-valued line to its index.
var statKeys = [statSingleCount]string{"intr", "ctxt", "processes", "btime", "procs_running", "procs_blocked"}

// parseStat parses /proc/stat (named file in errors) into v, as procfs
// parses it: cpu lines in USER_HZ ticks turned into seconds, missing
// columns left at zero, lines with fewer than two fields ignored. A bad line
// is skipped and reported; the others are still parsed.
func parseStat(data []byte, file string, v *statValues, fields *[][]byte) error {
	errs := lineErrs{file: file}
	v.cpus = v.cpus[:0]
	v.single = [statSingleCount]uint64{}
	v.bad = [statSingleCount]bool{}
	v.hasSoft = false
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		// Most lines need only their first two fields; the intr line
		// would cost more to split (thousands of numbered counts, not
		// exported) than the rest of the file.
		key, val, ok := firstTwoFields(line)
		switch {
		case !ok:
		case string(key) == "softirq":
			*fields = splitFields(line, *fields)
			parseStatSoftirq(*fields, n, v, &errs)
		case bytes.HasPrefix(key, []byte("cpu")):
			if !parseStatCPUFast(line, v) {
				*fields = splitFields(line, *fields)
				parseStatCPU(*fields, n, v, &errs)
			}
		default:
			parseStatSingle(key, val, n, v, &errs)
		}
	}
	return errs.err()
}

// parseStatSingle parses the value of a single-valued line.
func parseStatSingle(key, val []byte, n int, v *statValues, errs *lineErrs) {
	for i, k := range statKeys {
		if string(key) != k {
			continue
		}
		u, err := parseUint(val)
		if err != nil {
			errs.addf(n, "%s: %v", k, err)
			v.bad[i] = true
			return
		}
		v.single[i] = u
		v.bad[i] = false
		return
	}
}

func parseStatSoftirq(f [][]byte, n int, v *statValues, errs *lineErrs) {
	if len(f) < 12 {
		errs.addf(n, "softirq: want a total and 10 vectors, got %d fields", len(f)-1)
		return
	}
	// The total (f[1]) must parse too, as procfs checks it.
	for i := 1; i < 12; i++ {
		u, err := parseUint(f[i])
		if err != nil {
			errs.addf(n, "softirq field %d: %v", i, err)
			return
		}
		if i >= 2 {
			v.softirq[i-2] = u
		}
	}
	v.hasSoft = true
}

// parseStatCPUFast parses a cpu line the fast way, for a line of plain
// decimal columns, and reports whether it could; parseStatCPU takes the
// others, and words what is wrong with them.
func parseStatCPUFast(line []byte, v *statValues) bool {
	i := skipASCIISpace(line, 0)
	j := skipASCIIWord(line, i)
	if j < len(line) && byteClass[line[j]] == classHigh {
		return false
	}
	var ticks [cpuColumns]uint64
	cols, _, ok := appendUints(ticks[:0], line[j:], cpuColumns)
	if !ok {
		return false
	}
	name := line[i:j]
	if len(name) == 3 {
		return true // the total, not exported
	}
	id, ok := decimalUint(name[3:])
	if !ok || id >= 1<<63 {
		return false
	}
	c := cpuTimes{id: int64(id)}
	for k, t := range cols {
		c.t[k] = float64(t) / userHZ
	}
	v.cpus = append(v.cpus, c)
	return true
}

func parseStatCPU(f [][]byte, n int, v *statValues, errs *lineErrs) {
	var c cpuTimes
	for i := 1; i < len(f) && i <= cpuColumns; i++ {
		x, err := parseFloat(f[i])
		if err != nil {
			errs.addf(n, "%s column %d: %v", f[0], i, err)
			return
		}
		c.t[i-1] = x / userHZ
	}
	if len(f[0]) == 3 {
		return // the "cpu" line sums all CPUs; node_exporter does not export it
	}
	id, err := procfile.ParseInt(f[0][3:])
	if err != nil {
		errs.addf(n, "bad CPU name %q", f[0])
		return
	}
	if id < 0 {
		return // procfs files this under the total, which is not exported
	}
	c.id = id
	v.cpus = append(v.cpus, c)
}

// Stat emits what node_exporter's cpu and stat collectors emit from
// /proc/stat: node_cpu_seconds_total{cpu,mode} and
// node_cpu_guest_seconds_total{cpu,mode}, and node_intr_total,
// node_context_switches_total, node_forks_total, node_boot_time_seconds,
// node_procs_running and node_procs_blocked.
//
// Like node_exporter, it keeps each CPU's last times and never lets one go
// backwards, except that an idle time falling by 3 s or more starts that CPU
// afresh (a CPU unplugged and plugged back).
//
// A Stat is not safe for concurrent use.
type Stat struct {
	// SoftIRQVectors adds node_softirqs_total{vector}, as node_exporter's
	// --collector.stat.softirq flag does. Default false, as in node_exporter.
	SoftIRQVectors bool

	procFile
	fields [][]byte
	v      statValues
	prev   []cpuPrev // by CPU id
	keys   []cpuKeys // by CPU id, built on first sight of the CPU
	labels numLabels
	cycle  uint64
}

// cpuKeys are the series of one CPU, in the column order of cpuTimes:
// node_cpu_seconds_total for the first eight modes, then
// node_cpu_guest_seconds_total for guest and guest_nice.
type cpuKeys [cpuColumns]emit.Prefix

// cpuPrev is the last exported times of one CPU.
type cpuPrev struct {
	seen uint64 // cycle in which the CPU was last present; 0: never
	t    [cpuColumns]float64
}

// NewStat returns a generator of /proc/stat under o.ProcRoot.
func NewStat(o Options) *Stat {
	o = o.withDefaults()
	g := &Stat{
		procFile: newProcFile(8<<10, o.ProcRoot, "stat"),
		fields:   make([][]byte, 0, 64),
	}
	return g
}

// Name implements emit.Generator.
func (g *Stat) Name() string { return "stat" }

// maxCPUID bounds the CPU numbers whose times are tracked; lines of larger
// numbers are reported and skipped.
const maxCPUID = 1 << 16

// Collect implements emit.Generator.
func (g *Stat) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return err
	}
	perr := parseStat(data, g.path, &g.v, &g.fields)
	g.cycle++
	for i := range g.v.cpus {
		c := &g.v.cpus[i]
		if c.id >= maxCPUID {
			if perr == nil {
				perr = errCPUID(g.path, c.id)
			}
			continue
		}
		p := g.monotonic(c)
		keys := g.cpuKeys(s, int(c.id))
		for m := range keys {
			s.BeginPrefix(&keys[m]).Value(p.t[m])
		}
	}
	// Forget the CPUs that went away, so that one plugged back starts afresh.
	for i := range g.prev {
		if g.prev[i].seen != g.cycle {
			g.prev[i] = cpuPrev{}
		}
	}
	for i, name := range statSingleNames {
		if !g.v.bad[i] {
			s.Begin(name).Value(float64(g.v.single[i]))
		}
	}
	if g.SoftIRQVectors && g.v.hasSoft {
		for i, vec := range softirqVectors {
			s.Begin("node_softirqs_total").Label("vector", vec).Value(float64(g.v.softirq[i]))
		}
	}
	return perr
}

// cpuKeys returns the series keys of CPU id, building them the first time.
func (g *Stat) cpuKeys(s *emit.Scan, id int) *cpuKeys {
	for len(g.keys) <= id {
		g.keys = append(g.keys, cpuKeys{})
	}
	k := &g.keys[id]
	if k[0].Empty() {
		cpu := g.labels.get(id)
		for m, mode := range cpuModeNames {
			s.Begin("node_cpu_seconds_total").Label("cpu", cpu).Label("mode", mode).SavePrefix(&k[m])
		}
		s.Begin("node_cpu_guest_seconds_total").Label("cpu", cpu).Label("mode", "user").SavePrefix(&k[cpuGuest])
		s.Begin("node_cpu_guest_seconds_total").Label("cpu", cpu).Label("mode", "nice").SavePrefix(&k[cpuGuestNice])
	}
	return k
}

// monotonic folds c into the CPU's last times as node_exporter does and
// returns them.
func (g *Stat) monotonic(c *cpuTimes) *cpuPrev {
	for int64(len(g.prev)) <= c.id {
		g.prev = append(g.prev, cpuPrev{})
	}
	p := &g.prev[c.id]
	if p.seen == 0 || p.seen+1 < g.cycle {
		p.t = [cpuColumns]float64{}
	}
	p.seen = g.cycle
	if p.t[cpuIdle]-c.t[cpuIdle] >= jumpBackSeconds {
		p.t = [cpuColumns]float64{}
	}
	for i, x := range c.t {
		if x >= p.t[i] {
			p.t[i] = x
		}
	}
	return p
}

func errCPUID(file string, id int64) error {
	return fmt.Errorf("parse %s: CPU number %d is over %d; its times are not exported", file, id, maxCPUID-1)
}
