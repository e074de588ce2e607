package hostgen

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"regexp"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// diskstatsDefaultExclude is node_exporter's default
// --collector.diskstats.device-exclude: RAM disks, loop and floppy devices,
// and partitions of sd/hd/vd/xvd and NVMe disks.
const diskstatsDefaultExclude = `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`

var diskstatsExclude = regexp.MustCompile(diskstatsDefaultExclude)

// diskstatsMaxStats is the number of counters after the device name that
// procfs reads (kernel 5.5 and later); further columns are ignored.
const diskstatsMaxStats = 17

// diskstatsMinStats is the fewest counters a line needs to be used at all
// (kernels before 4.18 give 11); shorter lines are skipped silently.
const diskstatsMinStats = 11

// diskstatsSeries names the counters of a /proc/diskstats line in column
// order, with the factor node_exporter applies: sectors become bytes
// (512-byte units) and milliseconds become seconds. Discarded sectors stay
// sectors, as in node_exporter.
var diskstatsSeries = [diskstatsMaxStats]struct {
	name  string
	scale float64
}{
	{"node_disk_reads_completed_total", 1},
	{"node_disk_reads_merged_total", 1},
	{"node_disk_read_bytes_total", 512},
	{"node_disk_read_time_seconds_total", 1.0 / 1000.0},
	{"node_disk_writes_completed_total", 1},
	{"node_disk_writes_merged_total", 1},
	{"node_disk_written_bytes_total", 512},
	{"node_disk_write_time_seconds_total", 1.0 / 1000.0},
	{"node_disk_io_now", 1},
	{"node_disk_io_time_seconds_total", 1.0 / 1000.0},
	{"node_disk_io_time_weighted_seconds_total", 1.0 / 1000.0},
	{"node_disk_discards_completed_total", 1},
	{"node_disk_discards_merged_total", 1},
	{"node_disk_discarded_sectors_total", 1},
	{"node_disk_discard_time_seconds_total", 1.0 / 1000.0},
	{"node_disk_flush_requests_total", 1},
	{"node_disk_flush_requests_time_seconds_total", 1.0 / 1000.0},
}

// diskstatsLine is one device of /proc/diskstats. Name points into the
// parsed data.
type diskstatsLine struct {
	Major, Minor uint32
	Name         []byte
	N            int // counters read, diskstatsMinStats..diskstatsMaxStats
	Vals         [diskstatsMaxStats]uint64
}

// parseDiskstats parses /proc/diskstats into dst[:0] with the rule of
// procfs' Sscanf: white-space separated fields, major and minor as 32-bit
// numbers, up to 17 counters, lines with fewer than 11 counters skipped. A
// field that is not a number spoils its line only: the line is reported and
// left out, the others are returned. path only names the file in errors.
func parseDiskstats(data []byte, path string, dst []diskstatsLine, fields [][]byte) ([]diskstatsLine, [][]byte, error) {
	dst = dst[:0]
	var errs errorList
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = scanLine(data)
		fields = unicodeFields(line, fields)
		if len(fields) < 3+diskstatsMinStats {
			if bad := diskstatsBadField(fields); bad >= 0 {
				errs.add(lineError(path, n, "field %d %q is not a number", bad+1, fields[bad]))
			}
			continue
		}
		major, err1 := procfile.ParseUint(fields[0])
		minor, err2 := procfile.ParseUint(fields[1])
		if err1 != nil || err2 != nil || major > math.MaxUint32 || minor > math.MaxUint32 {
			errs.add(lineError(path, n, "device numbers %q %q are not 32-bit unsigned integers", fields[0], fields[1]))
			continue
		}
		l := diskstatsLine{Major: uint32(major), Minor: uint32(minor), Name: fields[2]}
		l.N = min(len(fields)-3, diskstatsMaxStats)
		ok := true
		for i := 0; i < l.N; i++ {
			v, err := procfile.ParseUint(fields[3+i])
			if err != nil {
				errs.add(lineError(path, n, "device %q counter %d: %v", l.Name, i+1, err))
				ok = false
				break
			}
			l.Vals[i] = v
		}
		if ok {
			dst = append(dst, l)
		}
	}
	return dst, fields, errs.err()
}

// diskstatsBadField returns the index of the first field of a short line
// that Sscanf would fail on (a number field that is not a number), or -1.
func diskstatsBadField(fields [][]byte) int {
	for i, f := range fields {
		if i == 2 {
			continue
		}
		u, err := procfile.ParseUint(f)
		if err != nil || (i < 2 && u > math.MaxUint32) {
			return i
		}
	}
	return -1
}

// diskstatsDevice caches the exclude decision for the device of one line,
// so the regular expression runs only when the set of devices changes.
type diskstatsDevice struct {
	name []byte
	keep bool
}

// Diskstats emits node_disk_* {device} from /proc/diskstats, as
// node_exporter's diskstats collector does with its default device filter.
// A Diskstats is not safe for concurrent use.
type Diskstats struct {
	path    string
	pathz   []byte
	r       *procfile.Reader
	lines   []diskstatsLine
	fields  [][]byte
	devices []diskstatsDevice
}

// NewDiskstats returns a generator reading ProcRoot/diskstats.
func NewDiskstats(o Options) *Diskstats {
	o = o.withDefaults()
	path := filepath.Join(o.ProcRoot, "diskstats")
	return &Diskstats{
		path:   path,
		pathz:  pathZ(path),
		r:      procfile.NewReader(4 << 10),
		fields: make([][]byte, 0, 24),
	}
}

// Name returns "diskstats".
func (g *Diskstats) Name() string { return "diskstats" }

// Collect reads /proc/diskstats and emits the counters of every device the
// default filter keeps, as many as the kernel gives (11, 15 or 17).
func (g *Diskstats) Collect(s *emit.Scan) error {
	data, err := g.r.ReadFullZ(g.pathz)
	if err != nil {
		return fmt.Errorf("diskstats: %w", err)
	}
	var perr error
	g.lines, g.fields, perr = parseDiskstats(data, g.path, g.lines, g.fields)
	if len(g.devices) > len(g.lines) {
		// Devices that went away: drop their cached names.
		clear(g.devices[len(g.lines):])
		g.devices = g.devices[:len(g.lines)]
	}
	for i := range g.lines {
		l := &g.lines[i]
		if !g.keep(i, l.Name) {
			continue
		}
		for c := 0; c < l.N; c++ {
			d := &diskstatsSeries[c]
			s.Begin(d.name).LabelBytes("device", l.Name).Value(float64(l.Vals[c]) * d.scale)
		}
	}
	if perr != nil {
		return fmt.Errorf("diskstats: %w", perr)
	}
	return nil
}

// keep says whether the device on line i passes the exclude filter, reusing
// the answer of the previous scan while the device on that line is the same.
func (g *Diskstats) keep(i int, name []byte) bool {
	if i < len(g.devices) && bytes.Equal(g.devices[i].name, name) {
		return g.devices[i].keep
	}
	if i >= len(g.devices) {
		g.devices = append(g.devices, diskstatsDevice{})
	}
	d := &g.devices[i]
	d.name = append(d.name[:0], name...)
	d.keep = !diskstatsExclude.Match(name)
	return d.keep
}
