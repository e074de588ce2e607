package procgen

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/procfleet/procfleet/agent/procfile"
)

// The parsers below are pure functions over the bytes of one file. They
// allocate nothing on success; an error names the line and what was wrong,
// and the caller adds the file's path.

// userHZ is USER_HZ, the unit of the clock tick fields of /proc/PID/stat. It
// is 100 on every Linux architecture the agent runs on (the kernel converts
// from its internal HZ), which is why procfs and node_exporter hard-code it.
const userHZ = 100

// statFields are the fields of /proc/PID/stat (or task/TID/stat) in use.
type statFields struct {
	comm       []byte // between the first '(' and the last ')'; aliases the input
	state      byte
	ppid       int64
	flags      uint64 // the kernel's PF_* flags of the task
	minflt     uint64
	majflt     uint64
	utime      uint64 // clock ticks
	stime      uint64 // clock ticks
	numThreads int64
	starttime  uint64 // clock ticks after boot
	vsize      uint64 // bytes
	rss        int64  // pages
}

// statMinFields is how many fields after the comm a stat line must hold:
// everything up to rss (field 24 of proc(5)).
const statMinFields = 22

// parseStat parses the content of a stat file. comm may hold any byte,
// including spaces, parentheses and newlines, so it is taken from the first
// '(' to the last ')' of the file, as the kernel documents and procfs does.
func parseStat(data []byte) (statFields, error) {
	var s statFields
	l := bytes.IndexByte(data, '(')
	r := bytes.LastIndexByte(data, ')')
	if l < 0 || r < l {
		return s, errors.New("line 1: no comm in parentheses")
	}
	s.comm = data[l+1 : r]
	rest := data[r+1:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	var (
		n   int
		err error
	)
	for len(rest) > 0 && err == nil {
		var f []byte
		f, rest = nextField(rest)
		if f == nil {
			break
		}
		err = s.setField(n, f)
		n++
		if n == statMinFields {
			break
		}
	}
	if err != nil {
		return s, err
	}
	if n < statMinFields {
		return s, fmt.Errorf("line 1: %d fields after comm, want at least %d (truncated?)", n, statMinFields)
	}
	return s, nil
}

// setField stores field i (0 is the state, the third field of proc(5)).
func (s *statFields) setField(i int, f []byte) error {
	var err error
	switch i {
	case 0:
		if len(f) != 1 {
			return fmt.Errorf("line 1: state %q is not one letter", f)
		}
		s.state = f[0]
	case 1:
		s.ppid, err = procfile.ParseInt(f)
	case 6:
		s.flags, err = procfile.ParseUint(f)
	case 7:
		s.minflt, err = procfile.ParseUint(f)
	case 9:
		s.majflt, err = procfile.ParseUint(f)
	case 11:
		s.utime, err = procfile.ParseUint(f)
	case 12:
		s.stime, err = procfile.ParseUint(f)
	case 17:
		s.numThreads, err = procfile.ParseInt(f)
	case 19:
		s.starttime, err = procfile.ParseUint(f)
	case 20:
		s.vsize, err = procfile.ParseUint(f)
	case 21:
		s.rss, err = procfile.ParseInt(f)
	}
	if err != nil {
		return fmt.Errorf("line 1: field %d: %w", i+3, err)
	}
	return nil
}

// nextField returns the first space-separated field of b and the rest, or a
// nil field when b holds only spaces.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	return b[i:j], b[j:]
}

// statusFields are the fields of /proc/PID/status in use.
type statusFields struct {
	uid          uint64 // real uid, first of the Uid line
	voluntary    uint64
	nonvoluntary uint64
	hasUID       bool
	hasCtxt      bool // both ctxt switch lines were present
}

var (
	keyUID     = []byte("Uid:")
	keyVolCtxt = []byte("voluntary_ctxt_switches:")
	keyNonCtxt = []byte("nonvoluntary_ctxt_switches:")
)

// parseStatus parses the content of a status file. It looks the three
// lines it uses up with bytes.Index instead of walking the ~55 lines of the
// file: Uid comes early, the context switches come last.
func parseStatus(data []byte) (statusFields, error) {
	var s statusFields
	at := findLine(data, 0, keyUID)
	if at < 0 {
		return s, errors.New("no Uid line (truncated?)")
	}
	f, _ := nextTabField(data[at+len(keyUID):])
	var err error
	if s.uid, err = procfile.ParseUint(f); err != nil {
		return s, fmt.Errorf("line %d: Uid: %w", lineOf(data, at), err)
	}
	s.hasUID = true
	vol := findLine(data, at, keyVolCtxt)
	if vol >= 0 {
		f, _ = nextTabField(data[vol+len(keyVolCtxt):])
		if s.voluntary, err = procfile.ParseUint(f); err != nil {
			return s, fmt.Errorf("line %d: voluntary_ctxt_switches: %w", lineOf(data, vol), err)
		}
	}
	non := findLine(data, at, keyNonCtxt)
	if non >= 0 {
		f, _ = nextTabField(data[non+len(keyNonCtxt):])
		if s.nonvoluntary, err = procfile.ParseUint(f); err != nil {
			return s, fmt.Errorf("line %d: nonvoluntary_ctxt_switches: %w", lineOf(data, non), err)
		}
	}
	s.hasCtxt = vol >= 0 && non >= 0
	return s, nil
}

// findLine returns the offset of the first line of data at or after from
// that starts with key, or -1.
func findLine(data []byte, from int, key []byte) int {
	if from == 0 && bytes.HasPrefix(data, key) {
		return 0
	}
	for off := from; off < len(data); {
		i := bytes.Index(data[off:], key)
		if i < 0 {
			return -1
		}
		i += off
		if i > 0 && data[i-1] == '\n' {
			return i
		}
		off = i + 1
	}
	return -1
}

// lineOf returns the 1-based number of the line holding offset at.
func lineOf(data []byte, at int) int {
	return bytes.Count(data[:at], []byte{'\n'}) + 1
}

// nextTabField returns the first field of b separated by spaces or tabs,
// within b's first line.
func nextTabField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' {
		j++
	}
	return b[i:j], b[j:]
}

// ioFields are the fields of /proc/PID/io in use.
type ioFields struct {
	readBytes  uint64
	writeBytes uint64
}

var (
	keyReadBytes  = []byte("read_bytes:")
	keyWriteBytes = []byte("write_bytes:")
)

// parseIO parses the content of an io file. Both read_bytes and
// write_bytes must be present.
func parseIO(data []byte) (ioFields, error) {
	var s ioFields
	var rd, wr bool
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data = procfile.NextLine(data)
		var err error
		switch {
		case bytes.HasPrefix(line, keyReadBytes):
			f, _ := nextTabField(line[len(keyReadBytes):])
			s.readBytes, err = procfile.ParseUint(f)
			rd = true
		case bytes.HasPrefix(line, keyWriteBytes):
			f, _ := nextTabField(line[len(keyWriteBytes):])
			s.writeBytes, err = procfile.ParseUint(f)
			wr = true
		}
		if err != nil {
			return s, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if !rd || !wr {
		return s, errors.New("no read_bytes or write_bytes line (truncated?)")
	}
	return s, nil
}

// schedFields are the three fields of /proc/PID/schedstat. They are the
// thread-group leader's own (its sched_info and sched_entity), not the
// process's: time on a CPU, time waiting on a run queue (both in ns) and
// how many times it was put on a CPU (pcount). A kernel without
// CONFIG_SCHED_INFO has no such file; one with sched_info off writes
// "0 0 0".
type schedFields struct {
	runtime  uint64
	runDelay uint64
	pcount   uint64
}

// parseSchedstat parses the content of a schedstat file: three numbers on
// one line. Fields after the third are ignored, should a kernel add some.
func parseSchedstat(data []byte) (schedFields, error) {
	var s schedFields
	line, _ := procfile.NextLine(data)
	var v [3]uint64
	for i := range v {
		var f []byte
		f, line = nextField(line)
		if f == nil {
			return s, fmt.Errorf("line 1: %d fields, want 3 (truncated?)", i)
		}
		var err error
		if v[i], err = procfile.ParseUint(f); err != nil {
			return s, fmt.Errorf("line 1: field %d: %w", i+1, err)
		}
	}
	s.runtime, s.runDelay, s.pcount = v[0], v[1], v[2]
	return s, nil
}

var keyBtime = []byte("btime ")

// parseBtime returns the boot time, in seconds since the epoch, from the
// content of /proc/stat.
func parseBtime(data []byte) (uint64, error) {
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data = procfile.NextLine(data)
		if bytes.HasPrefix(line, keyBtime) {
			f, _ := nextTabField(line[len(keyBtime):])
			v, err := procfile.ParseUint(f)
			if err != nil {
				return 0, fmt.Errorf("line %d: btime: %w", lineNo, err)
			}
			return v, nil
		}
	}
	return 0, errors.New("no btime line")
}

// appendCmdline appends the command line held in data (arguments each
// ended by a NUL, as /proc/PID/cmdline gives them) to dst: trailing NULs are
// dropped, the NULs between arguments become spaces, and the result is cut
// to at most max bytes, on a UTF-8 boundary where the text is UTF-8. Bytes
// that are not UTF-8 are kept; the text format writer replaces them with
// U+FFFD when it escapes the label.
func appendCmdline(dst, data []byte, max int) []byte {
	for len(data) > 0 && data[len(data)-1] == 0 {
		data = data[:len(data)-1]
	}
	if max < 0 {
		max = 0
	}
	if len(data) > max {
		cut := max
		// Step back over continuation bytes so as not to split a rune.
		for k := 0; k < utf8.UTFMax-1 && cut > 0 && data[cut]&0xC0 == 0x80; k++ {
			cut--
		}
		if data[cut]&0xC0 == 0x80 {
			cut = max // not UTF-8 here: a plain byte cut is as good as any
		}
		data = data[:cut]
	}
	start := len(dst)
	dst = append(dst, data...)
	for i := start; i < len(dst); i++ {
		if dst[i] == 0 {
			dst[i] = ' '
		}
	}
	return dst
}

// stateName maps the state letter of /proc/PID/stat to the word procfs,
// ps and top use for it (see fs/proc/array.c, task_state_array):
//
//	R running        S sleeping      D disk-sleep    T stopped
//	t tracing-stop   X dead          x dead          Z zombie
//	P parked         I idle          K wakekill      W waking
//
// K and W come from kernels 2.6.33 to 3.13 (W was also "paging" before
// 2.6.0). Any other byte maps to "unknown".
func stateName(c byte) string {
	switch c {
	case 'R':
		return "running"
	case 'S':
		return "sleeping"
	case 'D':
		return "disk-sleep"
	case 'T':
		return "stopped"
	case 't':
		return "tracing-stop"
	case 'X', 'x':
		return "dead"
	case 'Z':
		return "zombie"
	case 'P':
		return "parked"
	case 'I':
		return "idle"
	case 'K':
		return "wakekill"
	case 'W':
		return "waking"
	}
	return "unknown"
}
