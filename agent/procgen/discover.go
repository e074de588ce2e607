package procgen

import (
	"bytes"
	"os"
	"syscall"

	"github.com/procfleet/procfleet/agent/procfile"
)

// Finding the processes of a scan without listing all of them.
//
// Listing /proc costs about as much per process as reading its schedstat
// (getdents64 of 10,000 PIDs), and on a host whose processes are mostly
// idle it is a tenth of a scan. Yet the only processes a scan can find
// that the last one did not see are processes created since, and the
// kernel hands out PIDs in order: alloc_pid takes the first free PID
// after the last one allocated (idr_alloc_cyclic), wrapping past
// pid_max. So when ProcRoot is a procfs of the generator's own PID
// namespace, a scan reads the last PID allocated (field 5 of loadavg) and
// lists only the PIDs allocated since, by seeking the /proc directory to
// them (procfs encodes a PID's place in the directory as the PID plus a
// fixed offset, learnt from a full listing's d_off values and tried once
// by seeking to the generator's own PID), and visits
// those together with the processes of the last scan. Processes that
// exited fail their read and are dropped, as when they are no longer
// listed.
//
// The range listed starts at the last PID as of the scan before the last
// one, not the last: a PID is allocated a moment before its process
// appears in /proc (copy_process), so a process whose PID was taken just
// before one scan's read may show only in the next scan's listing. A whole
// cycle of PIDs between two reads would make the range meaningless, so
// the scan lists everything when the forks since (the processes line of
// /proc/stat, every task ever created) plus the tasks alive (loadavg) come
// near half of pid_max. Every fullListEvery-th scan lists everything
// anyway, and so does any scan where a counter cannot be read or parsed,
// or where the host has fewer than minSeekProcs processes (listing them
// costs less than the three reads).
type discovery struct {
	checked bool  // able was decided
	able    bool  // ProcRoot is a procfs of our PID namespace
	procfs  bool  // ProcRoot is a procfs (which lists PIDs in ascending order)
	base    int64 // directory offset of PID 0; 0 while not learnt, -1 never
	tried   bool  // base was tried by seeking to our own PID
	fds     [3]int

	// The counters read at the start of the last two scans, [0] the older:
	// last PID allocated and tasks created since boot.
	last, forks [2]int64
	known       int // scans whose counters are in last and forks: 0 to 2
	sinceFull   int // scans since the last full listing

	full, partial uint64 // scans of each kind, since New
	newPIDs       []int32
}

const (
	// fullListEvery bounds how long a process could go unseen should a
	// PID be taken without its process showing in /proc for a whole scan.
	fullListEvery = 30
	// reservedPIDs is the lowest PID allocated after a wrap (RESERVED_PIDS).
	reservedPIDs = 300
)

// minSeekProcs is the fewest processes for which the generator reads
// three counters rather than listing everything: /proc/stat grows with
// the CPUs, and on a host with a hundred of them reading it costs about
// what listing a few hundred processes does. A variable for tests.
var minSeekProcs = 256

const (
	dLoadavg = iota
	dStat
	dPidMax
)

var discoveryFiles = [3]string{"loadavg", "stat", "sys/kernel/pid_max"}

// counters are what a scan reads to plan its listing, and the runnable
// tasks of loadavg for the kernel threads' carry (see kthreadStill).
type counters struct {
	last, forks, tasks, pidMax int64
	running                    int64
}

// pidRange is the PIDs lo < pid <= hi.
type pidRange struct{ lo, hi int64 }

// plan decides a scan's listing from the counters just read (ok false when
// they could not be) and the process count of the last scan, and records
// the counters: full, or the ranges of new PIDs to list (n of them).
func (d *discovery) plan(c counters, ok bool, procs int) (full bool, rs [2]pidRange, n int) {
	if !ok {
		d.known = 0
		return true, rs, 0
	}
	prevLast, prevForks, known := d.last[0], d.forks[0], d.known
	d.last[0], d.forks[0] = d.last[1], d.forks[1]
	d.last[1], d.forks[1] = c.last, c.forks
	d.known = min(d.known+1, 2)
	if known < 2 {
		// With one scan's counters known, prevLast is that scan's; the
		// range needs the one before it (see discovery).
		return true, rs, 0
	}
	if d.base <= 0 || procs < minSeekProcs || d.sinceFull+1 >= fullListEvery {
		return true, rs, 0
	}
	forks := c.forks - prevForks
	if forks < 0 || c.last <= 0 || c.last > c.pidMax || prevLast > c.pidMax || 2*(forks+c.tasks+reservedPIDs) >= c.pidMax {
		return true, rs, 0
	}
	switch {
	case c.last == prevLast:
		// No PID taken in this namespace (forks elsewhere take none here).
		return false, rs, 0
	case c.last >= prevLast:
		rs[0] = pidRange{prevLast, c.last}
		return false, rs, 1
	default:
		// Wrapped: from the bottom up to the last PID, then the top.
		rs[0] = pidRange{0, c.last}
		rs[1] = pidRange{prevLast, c.pidMax}
		return false, rs, 2
	}
}

// readCounters reads the counters of plan, keeping the three files open.
func (g *Generator) readCounters() (c counters, ok bool) {
	d := &g.disc
	for i, f := range discoveryFiles {
		if d.fds[i] == 0 {
			g.path = append(append(g.path[:0], g.opts.ProcRoot...), '/')
			fd, err := procfile.OpenZ(g.setPath(len(g.path), f), syscall.O_RDONLY)
			if err != nil {
				return c, false
			}
			// A file mounted over procfs's own (LXCFS serves loadavg and
			// stat per container) need not count PIDs the kernel's way.
			var fs syscall.Statfs_t
			if syscall.Fstatfs(fd, &fs) != nil || fs.Type != procSuperMagic {
				_ = syscall.Close(fd)
				d.able = false
				return c, false
			}
			d.fds[i] = fd + 1
		}
		data, err := g.r.ReadFD(d.fds[i]-1, nil, 0)
		if err != nil {
			return c, false
		}
		switch i {
		case dLoadavg:
			c.running, c.tasks, c.last, ok = parseLoadavgPIDs(data)
		case dStat:
			c.forks, ok = parseForks(data)
		case dPidMax:
			c.pidMax, ok = parseDecimal(bytes.TrimSpace(data))
		}
		if !ok {
			return c, false
		}
	}
	return c, true
}

// closeDiscovery closes the counter files.
func (g *Generator) closeDiscovery() {
	for i, fd := range g.disc.fds {
		if fd != 0 {
			_ = syscall.Close(fd - 1)
			g.disc.fds[i] = 0
		}
	}
}

// parseLoadavgPIDs returns the runnable tasks (field 4 before its '/':
// nr_running(), the reader included), the task count (field 4 after its
// '/') and the last PID allocated (field 5) of /proc/loadavg,
// "0.10 0.88 1.71 1/102 6867".
func parseLoadavgPIDs(b []byte) (running, tasks, last int64, ok bool) {
	line, _ := procfile.NextLine(b)
	var f [5][]byte
	for i := range f {
		if f[i], line = nextField(line); f[i] == nil {
			return 0, 0, 0, false
		}
	}
	if extra, _ := nextField(line); extra != nil {
		return 0, 0, 0, false
	}
	i := bytes.IndexByte(f[3], '/')
	if i < 0 {
		return 0, 0, 0, false
	}
	if running, ok = parseDecimal(f[3][:i]); !ok {
		return 0, 0, 0, false
	}
	if tasks, ok = parseDecimal(f[3][i+1:]); !ok {
		return 0, 0, 0, false
	}
	last, ok = parseDecimal(f[4])
	return running, tasks, last, ok
}

// parseForks returns the value of the processes line of /proc/stat: every
// task created since boot.
func parseForks(b []byte) (int64, bool) {
	const key = "\nprocesses "
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return parseDecimal(rest)
}

// parseDecimal parses a non-negative decimal of at most 18 digits. Unlike
// procfile.ParseUint it allocates nothing when b is not a number: parsePID
// meets "self", "net" and the other names of /proc on every listing.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// checkDiscovery decides, once, whether ProcRoot is a procfs of the
// generator's own PID namespace: the NSpid line of ProcRoot/self/status
// lists one PID per namespace from the procfs's down to the reader's, so
// it has a single one exactly then (Linux 4.1 and later; without the line
// the generator always lists everything).
func (g *Generator) checkDiscovery() {
	d := &g.disc
	d.checked = true
	if d.procfs = isProcfs(g.opts.ProcRoot); !d.procfs {
		return
	}
	g.path = append(append(g.path[:0], g.opts.ProcRoot...), "/self/status\x00"...)
	data, err := g.r.ReadZ(g.path, 0)
	if err != nil {
		return
	}
	i := bytes.Index(data, []byte("\nNSpid:"))
	if i < 0 {
		return
	}
	line := data[i+len("\nNSpid:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	d.able = len(bytes.Fields(line)) == 1
}

// tryBase checks, once, that the layout learnt from d_off values is the
// one seeking uses: seeking the directory d (open on ProcRoot) to base
// plus the generator's own PID lists that PID first, and seeking one
// further lists a greater PID first (or nothing). It turns seeking off for
// good otherwise.
func (disc *discovery) tryBase(d *dirReader) {
	disc.tried = true
	self := int32(os.Getpid())
	first := func(off int64) (int32, bool) {
		if err := d.seek(off); err != nil {
			return 0, false
		}
		_, pid, err := d.nextPID()
		return pid, err == nil
	}
	at, ok1 := first(disc.base + int64(self))
	next, ok2 := first(disc.base + int64(self) + 1)
	if !ok1 || !ok2 || at != self || (next != 0 && next <= self) {
		disc.base = -1
	}
}

// learnBase records the directory offset of PID 0 from two PIDs listed one
// after the other: the d_off of an entry is where the next one is, and
// procfs puts PID p at p plus a fixed offset (TGID_OFFSET in
// fs/proc/base.c). Offsets that disagree with one learnt before turn
// seeking off for good: the directory is not laid out as expected.
func (d *discovery) learnBase(off int64, next int32) {
	b := off - int64(next)
	switch {
	case d.base < 0:
	case b <= 0:
		d.base = -1
	case d.base == 0:
		d.base = b
	case d.base != b:
		d.base = -1
	}
}
