package hostgen

import (
	"bytes"
	"fmt"

	"github.com/procfleet/procfleet/agent/emit"
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
	errs := lineErrs{file: path}
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = nextLine(data)
		if n <= 2 {
			continue
		}
		colon := bytes.LastIndexByte(line, ':')
		if colon < 0 {
			errs.addf(n, "no colon after the interface name")
			continue
		}
		name := bytes.TrimSpace(line[:colon])
		if len(name) == 0 {
			errs.addf(n, "empty interface name")
			continue
		}
		l := netdevLine{Name: name}
		counters := line[colon+1:]
		if vals, _, ok := appendUints(l.Vals[:0], counters, netdevColumns); !ok || len(vals) < netdevColumns {
			fields = splitFields(counters, fields)
			if err := netdevCounters(fields, &l); err != nil {
				errs.add(n, err)
				continue
			}
		}
		dst = append(dst, l)
	}
	return dst, fields, errs.err()
}

// netdevCounters parses the counters of interface l the general way, and
// says what is wrong with them, if anything.
func netdevCounters(fields [][]byte, l *netdevLine) error {
	if len(fields) < netdevColumns {
		return fmt.Errorf("interface %q has %d counters, want %d", l.Name, len(fields), netdevColumns)
	}
	for i := range netdevColumns {
		v, err := parseUint(fields[i])
		if err != nil {
			return fmt.Errorf("interface %q column %d: %w", l.Name, i+1, err)
		}
		l.Vals[i] = v
	}
	return nil
}

// Netdev emits node_network_*_total{device} from /proc/net/dev, as
// node_exporter's netdev collector does with netlink off. Every interface is
// kept: the collector has no default device filter. A Netdev is not safe for
// concurrent use.
type Netdev struct {
	procFile
	lines  []netdevLine
	fields [][]byte
	// keys caches, by line, the series keys of the interface last seen
	// there, so that its name is escaped only when it changes.
	keys rowCache[[netdevColumns]emit.Prefix]
}

// NewNetdev returns a generator reading ProcRoot/net/dev.
func NewNetdev(o Options) *Netdev {
	o = o.withDefaults()
	return &Netdev{
		procFile: newProcFile(4<<10, o.ProcRoot, "net", "dev"),
		fields:   make([][]byte, 0, 20),
	}
}

// Name returns "netdev".
func (g *Netdev) Name() string { return "netdev" }

// Collect reads /proc/net/dev and emits one series per interface and
// counter. Device names go straight from the read buffer into the series
// key, so the steady state allocates nothing; a vanished interface leaves
// nothing behind here (the Tracker forgets its series).
func (g *Netdev) Collect(s *emit.Scan) error {
	data, err := g.read()
	if err != nil {
		return fmt.Errorf("netdev: %w", err)
	}
	var perr error
	g.lines, g.fields, perr = parseNetdev(data, g.path, g.lines, g.fields)
	g.keys.truncate(len(g.lines))
	for i := range g.lines {
		l := &g.lines[i]
		keys, hit := g.keys.at(i, l.Name)
		if !hit {
			for c, name := range netdevNames {
				s.Begin(name).LabelBytes("device", l.Name).SavePrefix(&keys[c])
			}
		}
		for c := range keys {
			s.BeginPrefix(&keys[c]).Value(float64(l.Vals[c]))
		}
	}
	if perr != nil {
		return fmt.Errorf("netdev: %w", perr)
	}
	return nil
}
