package hostgen

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// The per-protocol keys of a sockstat line that node_exporter exports, in
// the order of sockstatLine.Vals; mem is also exported times the page size.
var sockstatKeys = [...]string{"inuse", "orphan", "tw", "alloc", "mem", "memory"}

const (
	sockstatInuse = 0
	sockstatMem   = 4
	sockstatNKeys = len(sockstatKeys)
)

// sockstatLine is one line of /proc/net/sockstat or sockstat6: "sockets:
// used N" or "TCP: inuse 5 orphan 0 ...". Proto points into the parsed data.
type sockstatLine struct {
	Proto   []byte // "TCP", ...; "sockets" for the sockets line
	Sockets bool
	Used    int64 // the sockets line's "used", 0 if absent
	Vals    [sockstatNKeys]int64
	Has     [sockstatNKeys]bool
}

// parseSockstat parses sockstat or sockstat6 into dst[:0] with procfs' rules:
// fields split at single spaces, at least a name and one key/value pair,
// values as Go integer literals (strconv base 0), and the last of repeated
// keys winning. A bad line is reported and left out; the others are
// returned. path only names the file in errors.
func parseSockstat(data []byte, path string, dst []sockstatLine, fields [][]byte) ([]sockstatLine, [][]byte, error) {
	dst = dst[:0]
	errs := lineErrs{file: path}
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = nextLine(data)
		fields = splitSpace(line, fields)
		if len(fields) < 3 {
			errs.addf(n, "want a name and key/value pairs, got %q", line)
			continue
		}
		if len(fields)%2 != 1 {
			errs.addf(n, "odd number of fields in the key/value pairs")
			continue
		}
		l := sockstatLine{Proto: bytes.TrimSuffix(fields[0], []byte(":"))}
		l.Sockets = string(l.Proto) == "sockets"
		ok := true
		for i := 1; i < len(fields); i += 2 {
			v, err := parseIntBase0(fields[i+1])
			if err != nil {
				errs.addf(n, "%s %s: %v", l.Proto, fields[i], err)
				ok = false
				break
			}
			if l.Sockets {
				if string(fields[i]) == "used" {
					l.Used = v
				}
				continue
			}
			for k, key := range sockstatKeys {
				if string(fields[i]) == key {
					l.Vals[k], l.Has[k] = v, true
				}
			}
		}
		if ok {
			dst = append(dst, l)
		}
	}
	return dst, fields, errs.err()
}

// sockstatNames are the series names of one line's protocol: the keys,
// then mem_bytes; "" where the name is unusable.
type sockstatNames [sockstatNKeys + 1]string

// sockstatFile is one of the two files with its parse state.
type sockstatFile struct {
	path  string
	file  procfile.Kept
	lines []sockstatLine
	names rowCache[sockstatNames] // by line, keyed by protocol
}

// Sockstat emits node_sockstat_* from /proc/net/sockstat and sockstat6, as
// node_exporter's sockstat collector does: node_sockstat_sockets_used from
// the IPv4 file, and per protocol inuse, orphan, tw, alloc, mem, memory and
// mem_bytes (mem pages times os.Getpagesize()) where the kernel gives them.
// A missing file (IPv4 or IPv6 off) is skipped without error. A Sockstat is
// not safe for concurrent use.
type Sockstat struct {
	files    [2]sockstatFile
	r        *procfile.Reader
	fields   [][]byte
	pageSize int
}

// NewSockstat returns a generator reading ProcRoot/net/sockstat and sockstat6.
func NewSockstat(o Options) *Sockstat {
	o = o.withDefaults()
	g := &Sockstat{r: procfile.NewReader(1 << 10), fields: make([][]byte, 0, 16), pageSize: os.Getpagesize()}
	g.files[0].path = filepath.Join(o.ProcRoot, "net", "sockstat")
	g.files[1].path = filepath.Join(o.ProcRoot, "net", "sockstat6")
	for i := range g.files {
		g.files[i].file = procfile.NewKept(g.files[i].path)
	}
	return g
}

// Name returns "sockstat".
func (g *Sockstat) Name() string { return "sockstat" }

// Close releases the files' kept descriptors.
func (g *Sockstat) Close() error {
	return errors.Join(g.files[0].file.Close(), g.files[1].file.Close())
}

// Collect reads both files and emits their series.
func (g *Sockstat) Collect(s *emit.Scan) error {
	var errs []error
	for fi := range g.files {
		f := &g.files[fi]
		data, err := g.r.ReadKept(&f.file)
		if err != nil {
			f.lines = f.lines[:0]
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		f.lines, g.fields, err = parseSockstat(data, f.path, f.lines, g.fields)
		if err != nil {
			errs = append(errs, err)
		}
		g.emit(s, f, fi == 0)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sockstat: %w", errors.Join(errs...))
	}
	return nil
}

func (g *Sockstat) emit(s *emit.Scan, f *sockstatFile, ipv4 bool) {
	f.names.truncate(len(f.lines))
	for i := range f.lines {
		l := &f.lines[i]
		if l.Sockets {
			// Only the IPv4 file's count is exported, as in node_exporter.
			if ipv4 {
				s.Begin("node_sockstat_sockets_used").Value(float64(l.Used))
			}
			continue
		}
		names := f.lineNames(i, l.Proto)
		for k := range sockstatNKeys {
			if names[k] != "" && (k == sockstatInuse || l.Has[k]) {
				s.Begin(names[k]).Value(float64(l.Vals[k]))
			}
		}
		if names[sockstatNKeys] != "" && l.Has[sockstatMem] {
			// Integer product, wrapping as node_exporter's int product does.
			s.Begin(names[sockstatNKeys]).Value(float64(l.Vals[sockstatMem] * int64(g.pageSize)))
		}
	}
}

// lineNames returns the series names for line i, building them only when
// the protocol on that line changed since the last scan.
func (f *sockstatFile) lineNames(i int, proto []byte) *sockstatNames {
	names, hit := f.names.at(i, proto)
	if hit {
		return names
	}
	for k, key := range sockstatKeys {
		names[k], _ = escapeMetricName("node_sockstat_" + string(proto) + "_" + key)
	}
	names[sockstatNKeys], _ = escapeMetricName("node_sockstat_" + string(proto) + "_mem_bytes")
	return names
}
