package hostgen

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// netstatDefaultFields is node_exporter's default --collector.netstat.fields:
// the counters of /proc/net/{netstat,snmp,snmp6} it exports, matched
// against "<Protocol>_<Name>".
const netstatDefaultFields = `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`

var netstatFields = regexp.MustCompile(netstatDefaultFields)

// The three sources, in the order node_exporter merges them: a protocol
// found in a later one replaces the same protocol of an earlier one.
const (
	netstatFileNetstat = iota
	netstatFileSNMP
	netstatFileSNMP6
	netstatFiles
)

// netstatShape is what a file looked like when the series names were last
// worked out: the key of each section.
type netstatShape struct {
	keys [][]byte
	n    int
}

func (sh *netstatShape) same(secs []netstatSection) bool {
	if sh.n != len(secs) {
		return false
	}
	for i := range secs {
		if !bytes.Equal(sh.keys[i], secs[i].Key) {
			return false
		}
	}
	return true
}

func (sh *netstatShape) remember(secs []netstatSection) {
	for len(sh.keys) < len(secs) {
		sh.keys = append(sh.keys, nil)
	}
	for i := range secs {
		sh.keys[i] = append(sh.keys[i][:0], secs[i].Key...)
	}
	// Keys past the end belong to sections that went away.
	clear(sh.keys[len(secs):])
	sh.keys = sh.keys[:len(secs)]
	sh.n = len(secs)
}

// Netstat emits node_netstat_<Protocol>_<Name> from /proc/net/netstat,
// /proc/net/snmp and /proc/net/snmp6, as node_exporter's netstat collector
// does with its default field filter. A missing snmp6 (IPv6 off) is not an
// error. A Netstat is not safe for concurrent use.
type Netstat struct {
	paths [netstatFiles]string
	files [netstatFiles]procfile.Kept
	// One reader per file: the parsed fields of all three point into the
	// read buffers until the series are emitted.
	readers [netstatFiles]*procfile.Reader
	parsed  [netstatFiles]netstatParsed
	shapes  [netstatFiles]netstatShape
	// names[f][j] is the series name of parsed[f].Fields[j], or "" when the
	// filter drops it or a later section replaces it.
	names [netstatFiles][]string
	built bool
}

// NewNetstat returns a generator reading ProcRoot/net/{netstat,snmp,snmp6}.
func NewNetstat(o Options) *Netstat {
	o = o.withDefaults()
	g := &Netstat{}
	for f := range netstatFiles {
		g.readers[f] = procfile.NewReader(8 << 10)
	}
	g.paths[netstatFileNetstat] = filepath.Join(o.ProcRoot, "net", "netstat")
	g.paths[netstatFileSNMP] = filepath.Join(o.ProcRoot, "net", "snmp")
	g.paths[netstatFileSNMP6] = filepath.Join(o.ProcRoot, "net", "snmp6")
	for f := range netstatFiles {
		g.files[f] = procfile.NewKept(g.paths[f])
	}
	return g
}

// Name returns "netstat".
func (g *Netstat) Name() string { return "netstat" }

// Close releases the files' kept descriptors.
func (g *Netstat) Close() error { return closeKept(g.files[:]) }

// Collect reads the three files and emits the counters the filter keeps.
// Series names are built once per shape of the files and reused while the
// header lines stay the same, so the steady state allocates nothing.
func (g *Netstat) Collect(s *emit.Scan) error {
	var errs []error
	for f := range netstatFiles {
		p := &g.parsed[f]
		data, err := g.readers[f].ReadKept(&g.files[f])
		if err != nil {
			p.reset()
			if f == netstatFileSNMP6 && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		if f == netstatFileSNMP6 {
			err = parseSNMP6(data, g.paths[f], p)
		} else {
			err = parseNetstat(data, g.paths[f], p)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	g.refreshNames()
	for f := range netstatFiles {
		names := g.names[f]
		for j := range g.parsed[f].Fields {
			fld := &g.parsed[f].Fields[j]
			if names[j] != "" && !fld.Bad {
				s.Begin(names[j]).Value(fld.Value)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netstat: %w", errors.Join(errs...))
	}
	return nil
}

// refreshNames works the series names out again when any file changed shape.
func (g *Netstat) refreshNames() {
	same := true
	for f := range netstatFiles {
		if !g.shapes[f].same(g.parsed[f].Sections) {
			same = false
			g.shapes[f].remember(g.parsed[f].Sections)
		}
	}
	if same && g.built {
		return
	}
	g.built = true
	for f := range netstatFiles {
		g.names[f] = netstatSeriesNames(&g.parsed, f, g.names[f])
	}
}

// netstatScope names where a protocol's counters come from in
// node_exporter's merged map: a section of netstat or snmp, or all of snmp6.
type netstatScope struct{ file, section int }

// netstatSeriesNames returns the series name of each field of file f, ""
// for a field that node_exporter would not export: dropped by the filter,
// replaced by a later section of the same protocol, or repeated later in the
// same protocol (the last value wins, as in a map). It runs only when the
// shape of a file changed, so it may allocate.
func netstatSeriesNames(parsed *[netstatFiles]netstatParsed, f int, dst []string) []string {
	scope := func(file, section int) netstatScope {
		if file == netstatFileSNMP6 {
			section = -1
		}
		return netstatScope{file, section}
	}
	owner := map[string]netstatScope{}
	for ff := range netstatFiles {
		for i, sec := range parsed[ff].Sections {
			owner[string(sec.Proto)] = scope(ff, i)
		}
	}
	p := &parsed[f]
	keys := make([]string, len(p.Fields))
	last := map[string]int{}
	var names [][]byte
	for i := range p.Sections {
		sec := &p.Sections[i]
		names = sec.Names(names)
		owned := owner[string(sec.Proto)] == scope(f, i)
		for j := sec.First; j < sec.End && j-sec.First < len(names); j++ {
			keys[j] = string(sec.Proto) + "_" + string(names[j-sec.First])
			if owned {
				last[keys[j]] = j
			}
		}
	}
	dst = dst[:0]
	for j, key := range keys {
		name := ""
		if at, ok := last[key]; ok && at == j && netstatFields.MatchString(key) {
			name, _ = escapeMetricName("node_netstat_" + key)
		}
		dst = append(dst, name)
	}
	return dst
}
