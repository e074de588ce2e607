package procgen

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// Generator emits the per-process series of a procfs tree. Every series
// carries the label pid; thread series carry tid as well.
//
// Per process, from /proc/PID/stat, status, io and cmdline:
//
//	proc_pid_cpu_seconds_total{pid,mode="user"|"system"}   stat utime, stime / USER_HZ
//	proc_pid_resident_memory_bytes{pid}                     stat rss * page size
//	proc_pid_virtual_memory_bytes{pid}                      stat vsize
//	proc_pid_threads{pid}                                   stat num_threads
//	proc_pid_minor_faults_total{pid}                        stat minflt
//	proc_pid_major_faults_total{pid}                        stat majflt
//	proc_pid_start_time_seconds{pid}                        /proc/stat btime + stat starttime / USER_HZ
//	proc_pid_ctxt_switches_total{pid,kind="voluntary"|"nonvoluntary"}  status
//	proc_pid_io_read_bytes_total{pid}                       io read_bytes
//	proc_pid_io_write_bytes_total{pid}                      io write_bytes
//	proc_pid_state{pid,state} 1                             stat state, named by stateName
//	proc_pid_info{pid,comm,ppid,uid,cmdline} 1              stat comm, ppid; status real uid; cmdline
//
// With Options.Threads, per thread, from /proc/PID/task/TID/stat and status
// (behind its schedstat, see threads.go):
//
//	proc_pid_cpu_seconds_total{pid,tid,mode}
//	proc_pid_minor_faults_total{pid,tid}
//	proc_pid_major_faults_total{pid,tid}
//	proc_pid_ctxt_switches_total{pid,tid,kind}
//	proc_pid_state{pid,tid,state} 1
//
// Memory, thread count, start time, I/O and info are left out per thread:
// threads share the process's memory, count and command line; a thread's
// start time and I/O add series without answering a common question.
//
// Counters are the raw cumulative values of the kernel. Values go through
// the scan's tracker, so between full refreshes only changed series are
// written. When the label set of proc_pid_state or proc_pid_info of a
// process changes (a new state; a new comm, ppid, uid or cmdline), the old
// set is written once with value 0, untracked, and the new one with 1.
//
// A process is identified by its PID and its start time: a PID reused by a
// new process starts from a clean state, and the old process's label sets
// are not carried over (nor written with 0: it vanished, like any other
// process that exits, and its series simply stop). The state of processes
// that vanished is dropped at the end of each scan.
//
// cmdline is read only for a new process and when its comm changed (an
// exec changes the comm): reading it costs as much as the stat file and it
// changes almost only on exec. A process that rewrites its own argv keeps
// its first cmdline label until its comm changes.
//
// status and io are read only when they may have changed. Before stat,
// the generator reads /proc/PID/schedstat: the thread-group leader's time
// on a CPU, time waiting to run, and how many times it was put on a CPU
// (pcount). What status gives (the leader's own voluntary and nonvoluntary
// context switches, fs/proc/array.c task_context_switch_counts, and its
// real uid, which only the task itself changes, commit_creds) can change
// only while the leader runs. A leader that was put on a CPU since the
// last read has a new pcount; one that was on a CPU at the last read and
// left it since has a new runtime (the scheduler adds the time it ran
// when it takes a task off a CPU), unless it is still there, and then
// the last scan's stat showed it running (state R). So when the three
// schedstat fields are those of the last scan and the last stat did not
// show R, the leader has not run since, and the status values of the last
// scan are written again, through the tracker like any read value. io
// sums every thread's I/O, which each thread accounts only while it runs:
// when the last scan's stat also showed a single thread, no other thread
// could have been created since (only the leader could have), and io is
// written again too; a process with more threads has io read every scan.
// stat is read every scan unless the host is quiet: memory can be
// reclaimed from a process that does not run, and its parent can exit.
// Kernel threads, which have neither, are left unread when loadavg counts
// the generator alone (kthread.go); sleeping user processes with one
// thread too, while no reclaim has run and their parent lives (idle.go). The
// gate needs two scans of a process with a schedstat; a
// process without one (no CONFIG_SCHED_INFO, a fixture tree), or with
// pcount 0 (sched_info off), has everything read every scan. SkippedReads
// counts the reads saved.
//
// A scan lists only the PIDs allocated since the scan before the last one
// and visits them with the processes of the last scan, when ProcRoot is a
// procfs of the generator's own PID namespace: see discovery.
//
// A process whose status and io the gate keeps and whose stat is byte for
// byte the last scan's (compared by a 64-bit hash) has every series value
// of the last scan, so its series are not built again: Scan.Carry stands
// for them, writing those whose refresh is due, from their positions in
// the last run of the same Scan. Threads get the same gate and carry, and
// their task directory is listed only when a thread may be new: see
// threads.go.
//
// io is owner-only: without the rights (an agent not running as root) or
// for a zombie, the io series are skipped quietly, and after a permission
// error the file is not tried again for that process. A process that exits
// in the middle of a scan is skipped quietly too. Malformed content is
// reported in Collect's error, naming the file and line, and the scan goes
// on with the other processes.
//
// A Generator is used by one goroutine at a time.
type Generator struct {
	opts      Options
	r         *procfile.Reader
	dir       dirReader // lists ProcRoot
	taskDir   dirReader // lists ProcRoot/PID/task
	path      []byte    // NUL-terminated path being read
	comm      []byte    // copy of the comm of the stat just parsed
	cmdline   []byte    // cmdline label being built
	procs     map[int32]*proc
	order     []int32 // PIDs read in the last scan, ascending (see discovery)
	nextOrder []int32 // this scan's, being built
	name      []byte  // decimal PID being visited by listNew
	disc      discovery
	peak      int // most processes held since procs was last rebuilt
	cycle     uint64
	btime     uint64
	hasBtime  bool
	pageSize  float64
	kept      int                 // descriptors kept open in procs
	fdMax     int                 // most descriptors to keep open
	tier      int                 // files past fdFiles[tier] keep no descriptor; see setTier
	noGate    bool                // read status and io every scan, and no schedstat (tests, benchmarks)
	noCarry   bool                // build every series even when nothing changed (tests, benchmarks)
	noSeek    bool                // list every process every scan (tests, benchmarks)
	carryOK   bool                // this scan follows the last one on the same Scan (see carry)
	oneRun    bool                // a loadavg read of this scan counted one runnable task, the generator's (see kthreadStill)
	runReads  int                 // loadavg reads of this scan for oneRun past the first (recheckRun)
	runWait   int                 // kernel threads, idle processes and threads visited since the last of them
	waited    bool                // this scan's first candidate waited for a quiet moment (quietRun)
	runWaits  uint64              // loadavg reads after such a wait, since New
	sleep     func(time.Duration) // time.Sleep; tests replace it
	viaKept   bool                // the last readThrough read through a descriptor kept from before
	noKCarry  bool                // read every kernel thread's stat (tests, benchmarks)
	kByPath   bool                // let kthreadStill trust a schedstat read by path (fixture trees in tests)
	soleRun   bool                // take every scan's loadavg to count one runnable task (tests, benchmarks)
	lastScan  *emit.Scan
	lastRun   uint64
	seed      maphash.Seed

	// The reclaim counters of /proc/vmstat (see idle.go and readReclaim).
	vmstat       procfile.Kept
	reclaimSum   uint64 // their sum at this scan's start
	reclaimEpoch uint64 // moved on each scan whose sum differs from the last one's
	reclaimOK    bool   // reclaimSum was read this scan

	skippedStatus uint64 // status reads the gate saved, since New
	carried       uint64 // processes carried over unchanged, since New
	skippedIO     uint64 // io reads the gate saved, since New
	skippedStat   uint64 // stat reads of kernel threads and idle processes saved (kthreadStill, userStill), since New

	tidName       []byte // decimal TID being read
	threadBudget  int    // most descriptors threads may keep this scan (setTier)
	threadTier    int    // thread files past threadFDFiles[threadTier] keep no descriptor (setTier)
	threadKept    int    // descriptors kept open in threads, counted in kept too
	threadStatus  uint64 // thread status reads the gate saved, since New
	threadCarried uint64 // threads carried over unchanged, since New
	taskListed    uint64 // task directories listed, since New
	taskUnlisted  uint64 // task directories whose listing was saved, since New

	errs  []error // first errors of this scan
	nerrs int     // all errors of this scan
}

// proc is what the generator remembers of one process between scans.
type proc struct {
	start    uint64 // stat starttime: tells a reused PID apart
	seen     uint64 // cycle in which the process was last read
	state    byte   // state letter written with value 1
	hasState bool
	hasInfo  bool
	noIO     bool // io refused permission: not tried again
	noSched  bool // no schedstat (or not readable): not tried again
	ppid     int64
	uid      uint64
	comm     []byte
	cmdline  []byte
	threads  map[int32]*thread // nil unless Options.Threads
	tids     []int32           // threads read in the last scan, in the order read
	// Threads (see threads.go): the num_threads of the last stat parsed
	// and the scans since the task directory was last listed.
	numThreads int64
	sinceList  int
	// A kernel thread whose stat may be left unread (see kthreadStill),
	// as its last stat read showed it, and the scans since that read.
	kthread   bool
	sinceStat int
	// The reclaimEpoch of the scan that last read the stat (see userStill).
	reclaimEpoch uint64
	fds          [nFDs]int32 // kept descriptors plus one; 0 is none

	// The gate (see Generator): schedstat as read at the start of the
	// last scan, the thread count of that scan's stat, and the status and
	// io values that hold as of that schedstat read.
	sched     schedFields
	status    statusFields
	io        ioFields
	hasSched  bool // sched is a basis to compare with
	hasStatus bool
	hasIO     bool
	oneThread bool

	// Carry (see Generator): the hash of the last scan's stat and where
	// that scan's series of the process lie in the scan's tracker.
	statSum   uint64
	markFrom  int
	markCount int // 0: nothing to carry
}

// thread is what the generator remembers of one thread between scans:
// the same gate and carry state as a process's (see threads.go).
type thread struct {
	start     uint64
	seen      uint64
	state     byte
	hasState  bool
	noSched   bool // no schedstat (or not readable): not tried again
	hasSched  bool
	hasStatus bool
	sched     schedFields
	status    statusFields
	statSum   uint64
	markFrom  int
	markCount int
	kthread   bool // see kthreadThreadStill
	sleeping  bool // a thread other than a kernel thread's, asleep at its last stat read (see threadStill)
	sinceStat int
	fds       [nThreadFDs]int32 // kept descriptors plus one; 0 is none
}

// maxErrors bounds how many errors one scan keeps in detail.
const maxErrors = 8

// New returns a generator for o. It reads nothing yet. o should have
// passed Validate; invalid values are clamped.
func New(o Options) *Generator {
	o = o.withDefaults()
	if o.CmdlineMaxBytes < 0 {
		o.CmdlineMaxBytes = 0
	}
	if o.CmdlineMaxBytes > maxCmdlineCap {
		o.CmdlineMaxBytes = maxCmdlineCap
	}
	return &Generator{
		opts:     o,
		r:        procfile.NewReader(4096),
		dir:      dirReader{fd: -1, buf: make([]byte, 32<<10)},
		taskDir:  dirReader{fd: -1, buf: make([]byte, 8<<10)},
		path:     make([]byte, 0, len(o.ProcRoot)+64),
		procs:    make(map[int32]*proc),
		pageSize: float64(os.Getpagesize()),
		fdMax:    fdBudget(o.ProcRoot),
		seed:     maphash.MakeSeed(),
		vmstat:   procfile.NewKept(filepath.Join(o.ProcRoot, "vmstat")),
		sleep:    time.Sleep,
	}
}

// Name reports "process".
func (g *Generator) Name() string { return "process" }

// Tracked reports how many processes the generator remembers.
func (g *Generator) Tracked() int { return len(g.procs) }

// TrackedThreads reports how many threads the generator remembers.
func (g *Generator) TrackedThreads() int {
	n := 0
	for _, p := range g.procs {
		n += len(p.threads)
	}
	return n
}

// SkippedReads reports how many reads of status and of io the schedstat
// gate saved since New: the values were known to be unchanged and were
// written again without reading the file.
func (g *Generator) SkippedReads() (status, io uint64) {
	return g.skippedStatus, g.skippedIO
}

// SkippedStats reports how many stat reads of kernel threads, idle user
// processes and sleeping threads were saved since New (see kthreadStill,
// userStill and threadStill).
func (g *Generator) SkippedStats() uint64 {
	return g.skippedStat
}

// ThreadCounts reports, since New, how many thread status reads the
// schedstat gate saved, how many threads were carried over unchanged, and
// how many task directories were listed and how many were not (every
// thread known; see threads.go).
func (g *Generator) ThreadCounts() (statusSkipped, carried, listed, unlisted uint64) {
	return g.threadStatus, g.threadCarried, g.taskListed, g.taskUnlisted
}

// Listings reports how many scans since New listed every process under
// ProcRoot (all) and how many listed only the PIDs allocated since (new;
// see discovery).
func (g *Generator) Listings() (all, new uint64) {
	return g.disc.full, g.disc.partial
}

// Collect reads every process under ProcRoot and writes its series to s.
func (g *Generator) Collect(s *emit.Scan) error {
	g.cycle++
	g.errs, g.nerrs = g.errs[:0], 0
	g.setTier()
	// Carried series are positions in the previous run of the same Scan.
	run := s.Run()
	g.carryOK = !g.noCarry && run != 0 && s == g.lastScan && run == g.lastRun+1
	g.lastScan, g.lastRun = s, run
	if !g.hasBtime {
		g.readBtime()
	}
	if !g.disc.checked {
		g.checkDiscovery()
	}
	full, rs, n := true, [2]pidRange{}, 0
	g.oneRun, g.runReads, g.runWait, g.waited = g.soleRun, 0, 0, false
	if g.disc.able && !g.noSeek {
		c, ok := g.readCounters()
		full, rs, n = g.disc.plan(c, ok, len(g.order))
		g.oneRun = g.oneRun || (ok && c.running == 1)
	}
	if (g.disc.able && !g.noSeek || g.kByPath) && !g.noKCarry {
		g.readReclaim()
	} else {
		g.reclaimOK = false
	}
	g.nextOrder = g.nextOrder[:0]
	var err error
	if full {
		err = g.listAll(s)
	} else {
		err = g.listNew(s, rs[:n])
	}
	if err != nil {
		return err
	}
	g.order, g.nextOrder = g.nextOrder, g.order
	for pid, p := range g.procs {
		if p.seen != g.cycle {
			g.closeFDs(p)
			delete(g.procs, pid)
		}
	}
	g.shrink()
	return g.err()
}

// listAll visits every process listed in ProcRoot, learning the
// directory's layout on the way (see discovery).
func (g *Generator) listAll(s *emit.Scan) error {
	g.disc.sinceFull = 0
	g.disc.full++
	g.path = append(append(g.path[:0], g.opts.ProcRoot...), 0)
	if err := g.dir.open(g.path); err != nil {
		return fmt.Errorf("cannot list processes: %w", err)
	}
	defer g.dir.close()
	if !g.disc.procfs {
		return g.listSorted(s)
	}
	var prevOff int64 // d_off of the last PID entry, 0 before the first
	for {
		name, pid, err := g.dir.nextPID()
		if err != nil {
			g.fail(fmt.Errorf("cannot list processes in %s: %w", g.opts.ProcRoot, err))
			return nil
		}
		if name == nil {
			return nil
		}
		if prevOff > 0 && g.disc.able {
			g.disc.learnBase(prevOff, pid)
		}
		prevOff = g.dir.off
		g.visit(s, pid, name)
	}
}

// listSorted visits every process listed in a ProcRoot that is not a
// procfs (a fixture tree) in ascending PID order, the order of a procfs
// listing, which idle.go's parent rule relies on. The directory is open.
func (g *Generator) listSorted(s *emit.Scan) error {
	pids := g.disc.newPIDs[:0] // listNew's, unused without a procfs
	for {
		name, pid, err := g.dir.nextPID()
		if err != nil {
			g.fail(fmt.Errorf("cannot list processes in %s: %w", g.opts.ProcRoot, err))
			break
		}
		if name == nil {
			break
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	g.disc.newPIDs = pids
	for _, pid := range pids {
		g.name = strconv.AppendInt(g.name[:0], int64(pid), 10)
		g.visit(s, pid, g.name)
	}
	return nil
}

// listNew visits the processes of the last scan together with those whose
// PIDs lie in rs, listed by seeking the ProcRoot directory to them (see
// discovery), in PID order as a listing gives them.
func (g *Generator) listNew(s *emit.Scan, rs []pidRange) error {
	news := g.disc.newPIDs[:0]
	if len(rs) > 0 {
		g.path = append(append(g.path[:0], g.opts.ProcRoot...), 0)
		if err := g.dir.open(g.path); err != nil {
			return fmt.Errorf("cannot list processes: %w", err)
		}
		if !g.disc.tried {
			if g.disc.tryBase(&g.dir); g.disc.base <= 0 {
				g.dir.close()
				return g.listAll(s)
			}
		}
		var err error
		for _, r := range rs {
			if news, err = g.dir.appendPIDs(news, g.disc.base+r.lo+1, r.hi); err != nil {
				g.dir.close()
				g.fail(fmt.Errorf("cannot list processes in %s from PID %d: %w", g.opts.ProcRoot, r.lo+1, err))
				return g.listAll(s)
			}
		}
		g.dir.close()
	}
	g.disc.newPIDs = news
	g.disc.sinceFull++
	g.disc.partial++
	old := g.order
	for i, j := 0, 0; i < len(old) || j < len(news); {
		var pid int32
		switch {
		case j == len(news) || (i < len(old) && old[i] < news[j]):
			pid = old[i]
			i++
		case i == len(old) || news[j] < old[i]:
			pid = news[j]
			j++
		default:
			pid = old[i]
			i++
			j++
		}
		g.name = strconv.AppendInt(g.name[:0], int64(pid), 10)
		g.visit(s, pid, g.name)
	}
	return nil
}

// visit collects one process and keeps its PID for the next scan's
// listNew when it was read.
func (g *Generator) visit(s *emit.Scan, pid int32, name []byte) {
	if g.collectProc(s, pid, name) {
		g.nextOrder = append(g.nextOrder, pid)
	}
}

func (g *Generator) readBtime() {
	g.path = append(append(g.path[:0], g.opts.ProcRoot...), "/stat\x00"...)
	data, err := g.r.ReadZ(g.path, 0)
	if err != nil {
		g.fail(fmt.Errorf("cannot read boot time, proc_pid_start_time_seconds left out: %w", err))
		return
	}
	bt, err := parseBtime(data)
	if err != nil {
		g.fail(fmt.Errorf("cannot parse %s, proc_pid_start_time_seconds left out: %w", g.pathString(), err))
		return
	}
	g.btime, g.hasBtime = bt, true
}

// shrink rebuilds the process map once it holds far fewer processes than
// at its peak: a Go map keeps its buckets after deletes, so a fork storm
// would otherwise leave its memory behind for good.
func (g *Generator) shrink() {
	n := len(g.procs)
	g.peak = max(g.peak, n)
	if g.peak < 1024 || n > g.peak/4 {
		return
	}
	m := make(map[int32]*proc, n)
	for pid, p := range g.procs {
		m[pid] = p
	}
	g.procs, g.peak = m, n
}

// fail records err for the scan's result.
func (g *Generator) fail(err error) {
	g.nerrs++
	if len(g.errs) < maxErrors {
		g.errs = append(g.errs, err)
	}
}

func (g *Generator) err() error {
	if g.nerrs == 0 {
		return nil
	}
	if g.nerrs > len(g.errs) {
		return errors.Join(append(g.errs[:len(g.errs):len(g.errs)],
			fmt.Errorf("and %d more errors", g.nerrs-len(g.errs)))...)
	}
	return errors.Join(g.errs...)
}

// pathString is the path being read, without its NUL, for an error.
func (g *Generator) pathString() string {
	return string(g.path[:len(g.path)-1])
}

// setPath makes g.path base+file+NUL and returns it.
func (g *Generator) setPath(base int, file string) []byte {
	g.path = append(append(g.path[:base], file...), 0)
	return g.path
}

// read reads file under the directory g.path[:base]. ok is false when the
// file could not be read; a read error is recorded unless quiet says the
// process went away or the file is not ours to read.
func (g *Generator) read(base int, file string, limit int) (data []byte, err error) {
	data, err = g.r.ReadZ(g.setPath(base, file), limit)
	if err != nil && !quiet(err) {
		g.fail(fmt.Errorf("cannot read: %w", err))
	}
	return data, err
}

// quiet reports errors that are part of normal operation: the process
// exited (ENOENT, ESRCH) or the file is not readable by the agent (EACCES,
// EPERM, hidepid mounts, io of other users' processes).
func quiet(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// parseErr records a parse error of the file at g.path.
func (g *Generator) parseErr(err error) {
	g.fail(fmt.Errorf("cannot parse %s: %w", g.pathString(), err))
}

// isPermission reports a permission error.
func isPermission(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
