package hostgen

import (
	"bytes"
)

// netstatField is the value of one counter of /proc/net/netstat,
// /proc/net/snmp or /proc/net/snmp6.
type netstatField struct {
	Value float64 // as strconv.ParseFloat gives it
	Bad   bool    // the value is not a number
}

// netstatSection is a run of fields that share one cache key: a header and
// value line pair of netstat or snmp, or one line of snmp6. Its slices
// point into the parsed data.
type netstatSection struct {
	// Key is the header line ("Tcp: RtoAlgorithm RtoMin ...") of a pair, or
	// the name ("Ip6InReceives") of an snmp6 line.
	Key        []byte
	Proto      []byte // "Tcp", "Ip6", ...
	Pair       bool   // Key is a header line
	First, End int    // the section's values are Fields[First:End]
}

// Names splits the counter names of the section into dst[:0]: the words of
// the header after the protocol, or the snmp6 name after the protocol. It is
// only needed when the series names are worked out again.
func (sec *netstatSection) Names(dst [][]byte) [][]byte {
	if !sec.Pair {
		return append(dst[:0], sec.Key[len(sec.Proto):])
	}
	dst = splitSpace(sec.Key, dst)
	return append(dst[:0], dst[1:]...)
}

// netstatParsed is what one of the three files parses into. Its slices are
// reused from one parse to the next.
type netstatParsed struct {
	Sections []netstatSection
	Fields   []netstatField
	scratch  [][]byte
}

func (p *netstatParsed) reset() {
	p.Sections = p.Sections[:0]
	p.Fields = p.Fields[:0]
}

// parseNetstat parses /proc/net/netstat or /proc/net/snmp into p: pairs of a
// header line ("Tcp: RtoAlgorithm RtoMin ...") and a value line ("Tcp: 1 200
// ..."), both split at single spaces, with the protocol being the first word
// less its last character, as node_exporter reads them. A pair whose column
// counts differ is reported and left out, and a value that is not a number is
// reported and marked Bad; the rest is returned. path only names the file in
// errors.
func parseNetstat(data []byte, path string, p *netstatParsed) error {
	p.reset()
	errs := lineErrs{file: path}
	var head, vals []byte
	for n := 1; len(data) > 0; n += 2 {
		head, data = nextLine(data)
		hasValues := len(data) > 0
		vals, data = nextLine(data)
		word := head
		if i := bytes.IndexByte(head, ' '); i >= 0 {
			word = head[:i]
		}
		if len(word) == 0 {
			errs.addf(n, "no protocol name at the start of the line")
			continue
		}
		proto := word[:len(word)-1]
		p.scratch = splitSpace(vals, p.scratch)
		if names := bytes.Count(head, []byte{' '}) + 1; names != len(p.scratch) {
			if !hasValues {
				errs.addf(n, "protocol %q has a header line but no value line", proto)
			} else {
				errs.addf(n+1, "protocol %q has %d values for %d names", proto, len(p.scratch)-1, names-1)
			}
			continue
		}
		sec := netstatSection{Key: head, Proto: proto, Pair: true, First: len(p.Fields)}
		for i := 1; i < len(p.scratch); i++ {
			v, err := parseFloat(p.scratch[i])
			if err != nil {
				errs.addf(n+1, "%s column %d: %v", proto, i, err)
			}
			p.Fields = append(p.Fields, netstatField{Value: v, Bad: err != nil})
		}
		sec.End = len(p.Fields)
		p.Sections = append(p.Sections, sec)
	}
	return errs.err()
}

// parseSNMP6 parses /proc/net/snmp6 into p: one "Ip6InReceives 7" pair per
// line, split at white space. As in node_exporter, the protocol is the name
// up to and including its first '6', lines without a '6' or without a value
// are skipped, and extra columns are ignored. A value that is not a number is
// reported and marked Bad. path only names the file in errors.
func parseSNMP6(data []byte, path string, p *netstatParsed) error {
	p.reset()
	errs := lineErrs{file: path}
	var line []byte
	for n := 1; len(data) > 0; n++ {
		line, data = nextLine(data)
		key, val, ok := firstTwoFields(line)
		if !ok {
			continue
		}
		six := bytes.IndexByte(key, '6')
		if six < 0 {
			continue
		}
		v, err := parseFloat(val)
		if err != nil {
			errs.addf(n, "%s: %v", key, err)
		}
		p.Sections = append(p.Sections, netstatSection{Key: key, Proto: key[:six+1], First: len(p.Fields), End: len(p.Fields) + 1})
		p.Fields = append(p.Fields, netstatField{Value: v, Bad: err != nil})
	}
	return errs.err()
}
