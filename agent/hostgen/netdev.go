package hostgen

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// netdevColumns is the number of counters on a /proc/net/dev line.
const netdevColumns = 16

// netdevNames are the series names node_exporter's netdev collector gives the
// columns of /proc/net/dev, in column order, when it reads that file
// (--no-collector.netdev.netlink) without --collector.netdev.enable-detailed-metrics:
// its "legacy" renaming turns errors/dropped into errs/drop.
var netdevNames = [netdevColumns]string{
	"node_network_receive_bytes_total",
	"node_network_receive_packets_total",
	"node_network_receive_errs_total",
	"node_network_receive_drop_total",
	"node_network_receive_fifo_total",
	"node_network_receive_frame_total",
	"node_network_receive_compressed_total",
	"node_network_receive_multicast_total",
	"node_network_transmit_bytes_total",
	"node_network_transmit_packets_total",
	"node_network_transmit_errs_total",
	"node_network_transmit_drop_total",
	"node_network_transmit_fifo_total",
	"node_network_transmit_colls_total",
	"node_network_transmit_carrier_total",
	"node_network_transmit_compressed_total",
}

// netdevLine is one interface of /proc/net/dev. Name points into the parsed
// data and is valid as long as the data is.
type netdevLine struct {
	Name []byte
	Vals [netdevColumns]uint64
}

// parseNetdev parses /proc/net/dev into dst[:0]. Like procfs, it skips the
// two header lines, takes the interface name before the last colon and
// ignores columns past the sixteenth. A bad line is left out and reported;
// the lines around it are still returned. path only names the file in errors.
func parseNetdev(data []byte, path string, dst []netdevLine, fields [][]byte) ([]netdevLine, [][]byte, error) {
	dst = dst[:0]
	var errs errorList
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = scanLine(data)
		if n <= 2 {
			continue
		}
		colon := bytes.LastIndexByte(line, ':')
		if colon < 0 {
			errs.add(lineError(path, n, "no colon after the interface name"))
			continue
		}
		name := trimUnicodeSpace(line[:colon])
		if len(name) == 0 {
			errs.add(lineError(path, n, "empty interface name"))
			continue
		}
		fields = unicodeFields(line[colon+1:], fields)
		if len(fields) < netdevColumns {
			errs.add(lineError(path, n, "interface %q has %d counters, want %d", name, len(fields), netdevColumns))
			continue
		}
		dst = append(dst, netdevLine{Name: name})
		l := &dst[len(dst)-1]
		for i := range netdevColumns {
			v, err := procfile.ParseUint(fields[i])
			if err != nil {
				errs.add(lineError(path, n, "interface %q column %d: %v", name, i+1, err))
				dst = dst[:len(dst)-1]
				break
			}
			l.Vals[i] = v
		}
	}
	return dst, fields, errs.err()
}

// Netdev emits node_network_*_total{device} from /proc/net/dev, as
// node_exporter's netdev collector does with netlink off. Every interface is
// kept: the collector has no default device filter. A Netdev is not safe for
// concurrent use.
type Netdev struct {
	path   string
	pathz  []byte
	r      *procfile.Reader
	lines  []netdevLine
	fields [][]byte
}

// NewNetdev returns a generator reading ProcRoot/net/dev.
func NewNetdev(o Options) *Netdev {
	o = o.withDefaults()
	path := filepath.Join(o.ProcRoot, "net", "dev")
	return &Netdev{
		path:   path,
		pathz:  pathZ(path),
		r:      procfile.NewReader(4 << 10),
		fields: make([][]byte, 0, 20),
	}
}

// Name returns "netdev".
func (g *Netdev) Name() string { return "netdev" }

// Collect reads /proc/net/dev and emits one series per interface and
// counter. Device names go straight from the read buffer into the series
// key, so the steady state allocates nothing; a vanished interface leaves
// nothing behind here (the Tracker forgets its series).
func (g *Netdev) Collect(s *emit.Scan) error {
	data, err := g.r.ReadFullZ(g.pathz)
	if err != nil {
		return fmt.Errorf("netdev: %w", err)
	}
	var perr error
	g.lines, g.fields, perr = parseNetdev(data, g.path, g.lines, g.fields)
	for i := range g.lines {
		l := &g.lines[i]
		for c, name := range netdevNames {
			s.Begin(name).LabelBytes("device", l.Name).Value(float64(l.Vals[c]))
		}
	}
	if perr != nil {
		return fmt.Errorf("netdev: %w", perr)
	}
	return nil
}
