package hostgen

import (
	"fmt"
	"math"
	"regexp"

	"github.com/procfleet/procfleet/agent/emit"
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
	errs := lineErrs{file: path}
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = nextLine(data)
		var l diskstatsLine
		if diskstatsFast(line, &l) {
			dst = append(dst, l)
			continue
		}
		fields = splitFields(line, fields)
		if len(fields) < 3+diskstatsMinStats {
			if bad := diskstatsBadField(fields); bad >= 0 {
				errs.addf(n, "field %d %q is not a number", bad+1, fields[bad])
			}
			continue
		}
		if err := diskstatsFields(fields, &l); err != nil {
			errs.add(n, err)
			continue
		}
		dst = append(dst, l)
	}
	return dst, fields, errs.err()
}

// diskstatsFast parses line into l the fast way, for a line of plain
// decimal fields with at least diskstatsMinStats counters, and reports
// whether it could.
func diskstatsFast(line []byte, l *diskstatsLine) bool {
	var dev [2]uint64
	nums, rest, ok := appendUints(dev[:0], line, 2)
	if !ok || len(nums) < 2 || dev[0] > math.MaxUint32 || dev[1] > math.MaxUint32 {
		return false
	}
	start := skipASCIISpace(rest, 0)
	end := skipASCIIWord(rest, start)
	if end == start || end < len(rest) && byteClass[rest[end]] == classHigh {
		return false
	}
	vals, _, ok := appendUints(l.Vals[:0], rest[end:], diskstatsMaxStats)
	if !ok || len(vals) < diskstatsMinStats {
		return false
	}
	l.Major, l.Minor, l.Name, l.N = uint32(dev[0]), uint32(dev[1]), rest[start:end], len(vals)
	return true
}

// diskstatsFields parses the fields of a line with enough counters into l
// the general way, and says what is wrong with them, if anything.
func diskstatsFields(fields [][]byte, l *diskstatsLine) error {
	major, err1 := parseUint(fields[0])
	minor, err2 := parseUint(fields[1])
	if err1 != nil || err2 != nil || major > math.MaxUint32 || minor > math.MaxUint32 {
		return fmt.Errorf("device numbers %q %q are not 32-bit unsigned integers", fields[0], fields[1])
	}
	l.Major, l.Minor, l.Name = uint32(major), uint32(minor), fields[2]
	l.N = min(len(fields)-3, diskstatsMaxStats)
	for i := 0; i < l.N; i++ {
		v, err := parseUint(fields[3+i])
		if err != nil {
			return fmt.Errorf("device %q counter %d: %w", l.Name, i+1, err)
		}
		l.Vals[i] = v
	}
	return nil
}

// diskstatsBadField returns the index of the first field of a short line
// that Sscanf would fail on (a number field that is not a number), or -1.
func diskstatsBadField(fields [][]byte) int {
	for i, f := range fields {
		if i == 2 {
			continue
		}
		u, err := parseUint(f)
		if err != nil || (i < 2 && u > math.MaxUint32) {
			return i
		}
	}
	return -1
}

// diskstatsDevice is what is worked out once for the device of one line:
// whether the exclude filter keeps it, and the keys of its series.
type diskstatsDevice struct {
	keep bool
	keys [diskstatsMaxStats]emit.Prefix
}

// Diskstats emits node_disk_* {device} from /proc/diskstats, as
// node_exporter's diskstats collector does with its default device filter.
// A Diskstats is not safe for concurrent use.
type Diskstats struct {
	procFile
	lines   []diskstatsLine
	fields  [][]byte
	devices rowCache[diskstatsDevice] // by line, keyed by device name
}

// NewDiskstats returns a generator reading ProcRoot/diskstats.
func NewDiskstats(o Options) *Diskstats {
	o = o.withDefaults()
	return &Diskstats{
		procFile: newProcFile(4<<10, o.ProcRoot, "diskstats"),
		fields:   make([][]byte, 0, 24),
	}
}

// Name returns "diskstats".
func (g *Diskstats) Name() string { return "diskstats" }

// Collect reads /proc/diskstats and emits the counters of every device the
// default filter keeps, as many as the kernel gives (11, 15 or 17).
func (g *Diskstats) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return fmt.Errorf("diskstats: %w", err)
	}
	var perr error
	g.lines, g.fields, perr = parseDiskstats(data, g.path, g.lines, g.fields)
	// Devices that went away drop their cached names.
	g.devices.truncate(len(g.lines))
	for i := range g.lines {
		l := &g.lines[i]
		d := g.device(s, i, l.Name)
		if !d.keep {
			continue
		}
		for c := 0; c < l.N; c++ {
			s.BeginPrefix(&d.keys[c]).Value(float64(l.Vals[c]) * diskstatsSeries[c].scale)
		}
	}
	if perr != nil {
		return fmt.Errorf("diskstats: %w", perr)
	}
	return nil
}

// device returns what is cached for the device on line i, working it out
// again only when the device on that line changed since the last scan.
func (g *Diskstats) device(s *emit.Scan, i int, name []byte) *diskstatsDevice {
	d, hit := g.devices.at(i, name)
	if hit {
		return d
	}
	d.keep = !diskstatsExclude.Match(name)
	if d.keep {
		for c := range d.keys {
			s.Begin(diskstatsSeries[c].name).LabelBytes("device", name).SavePrefix(&d.keys[c])
		}
	}
	return d
}
