package procgen

import (
	"bytes"
	"errors"
	"hash/maphash"
	"syscall"

	"github.com/procfleet/procfleet/agent/emit"
)

// Metric names, as DESIGN.md's metric contract has them.
const (
	mCPU       = "proc_pid_cpu_seconds_total"
	mRSS       = "proc_pid_resident_memory_bytes"
	mVirtual   = "proc_pid_virtual_memory_bytes"
	mThreads   = "proc_pid_threads"
	mMinFlt    = "proc_pid_minor_faults_total"
	mMajFlt    = "proc_pid_major_faults_total"
	mStartTime = "proc_pid_start_time_seconds"
	mCtxt      = "proc_pid_ctxt_switches_total"
	mIORead    = "proc_pid_io_read_bytes_total"
	mIOWrite   = "proc_pid_io_write_bytes_total"
	mState     = "proc_pid_state"
	mInfo      = "proc_pid_info"
)

// collectProc reads and writes the process whose /proc directory is name.
// It reports false when the process is gone (its stat is not there), so
// that listNew need not visit it again; true when it was read, and when it
// could not be for another reason, so that it is tried again next scan.
func (g *Generator) collectProc(s *emit.Scan, pid int32, name []byte) bool {
	g.path = append(append(append(g.path[:0], g.opts.ProcRoot...), '/'), name...)
	g.path = append(g.path, '/')
	base := len(g.path)

	p := g.procs[pid]
	fresh := p == nil
	if fresh {
		p = &proc{}
	}
	// schedstat comes first: the status and io values the gate keeps must
	// hold as of this read, and the thread count of the stat below must
	// be seen after it (see Generator).
	if !fresh && (p.kthread || p.userCandidate()) {
		g.recheckRun()
	}
	sched, schedOK := g.readSched(p, base)
	if !fresh && g.kthreadStill(p, sched, schedOK, g.viaKept) && g.carryOver(s, p) {
		// A kernel thread that cannot have changed: its stat is not read.
		g.skippedStat++
		p.sinceStat++
		if g.opts.Threads {
			g.collectThreads(s, name, base, p)
		}
		return true
	}
	if !fresh && g.userStill(pid, p, sched, schedOK) && g.carryOver(s, p) {
		// An idle user process whose stat cannot have changed (idle.go).
		g.skippedStat++
		p.sinceStat++
		if g.opts.Threads {
			g.collectThreads(s, name, base, p)
		}
		return true
	}
	data, err := g.readKept(p, fdStat, base, 0)
	var sum uint64
	if err == nil {
		sum = maphash.Bytes(g.seed, data)
		if !fresh && g.carry(s, p, sum, sched, schedOK) {
			p.sinceStat, p.reclaimEpoch = 0, g.reclaimEpoch
			if g.opts.Threads {
				g.collectThreads(s, name, base, p)
			}
			return true
		}
	}
	var st statFields
	if err == nil {
		if st, err = parseStat(data); err != nil {
			g.parseErr(err)
		}
	}
	if err != nil {
		if fresh {
			g.closeFDs(p)
		}
		return !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH)
	}
	g.comm = append(g.comm[:0], st.comm...) // data is overwritten by the next read
	st.comm = g.comm

	reset := fresh || p.start != st.starttime
	if reset {
		g.resetProc(p, st.starttime)
		g.procs[pid] = p
	}
	p.seen = g.cycle
	still := p.leaderStill(sched, schedOK)
	// After a reset the schedstat read may predate the stat that told the
	// new process apart: it is no basis for the next scan.
	p.sched, p.hasSched = sched, schedOK && !reset

	status, statusOK := g.statusOf(p, base, still)
	var io ioFields
	ioOK := false
	if !p.noIO {
		io, ioOK = g.ioOf(p, base, still && p.oneThread && st.numThreads == 1)
	}
	p.oneThread = st.numThreads == 1
	p.numThreads = st.numThreads
	p.kthread = isStillKthread(pid, &st)
	p.sinceStat, p.reclaimEpoch = 0, g.reclaimEpoch

	from := s.Mark()
	g.emitProc(s, name, &st)
	if statusOK && status.hasCtxt {
		s.Begin(mCtxt).LabelBytes("pid", name).Label("kind", "voluntary").Value(float64(status.voluntary))
		s.Begin(mCtxt).LabelBytes("pid", name).Label("kind", "nonvoluntary").Value(float64(status.nonvoluntary))
	}
	if ioOK {
		s.Begin(mIORead).LabelBytes("pid", name).Value(float64(io.readBytes))
		s.Begin(mIOWrite).LabelBytes("pid", name).Value(float64(io.writeBytes))
	}
	g.emitState(s, name, nil, &p.state, &p.hasState, st.state)
	if statusOK {
		g.emitInfo(s, name, base, p, &st, status.uid)
	}
	// What the next scan can carry: this scan's series of the process,
	// for the stat just read.
	p.statSum, p.markFrom, p.markCount = sum, from, s.Mark()-from
	if fresh || reset || from < 0 {
		p.markCount = 0
	}
	if g.opts.Threads {
		g.collectThreads(s, name, base, p)
	}
	return true
}

// carry writes the series of p as the last scan did, without reading
// status and io or building a single key, when nothing can have changed:
// its stat is byte for byte the last scan's (so its CPU times, memory,
// faults, threads, state, comm, ppid and start time are), and the gate
// says that status and io hold too (the leader has not run; for io, the
// process has one thread). It reports whether it did.
func (g *Generator) carry(s *emit.Scan, p *proc, sum uint64, sched schedFields, schedOK bool) bool {
	return sum == p.statSum && p.leaderStill(sched, schedOK) && g.carryOver(s, p)
}

// carryOver writes the series of p as the last scan did, once the caller
// established that its stat has not changed since and that its leader has
// not run (leaderStill): when status holds too, and io (the process has
// one thread) or the process has no io series, Scan.Carry stands for
// them. It reports whether it did.
func (g *Generator) carryOver(s *emit.Scan, p *proc) bool {
	if !g.carryOK || p.markCount == 0 || p.seen != g.cycle-1 || !p.hasStatus {
		return false
	}
	ioSkip := !p.noIO && p.oneThread && p.hasIO
	if !p.noIO && !ioSkip {
		return false
	}
	from := s.Mark()
	if !s.Carry(p.markFrom, p.markCount) {
		return false
	}
	p.seen, p.markFrom = g.cycle, from
	g.skippedStatus++
	g.closeFD(p, fdStatus)
	if ioSkip {
		g.skippedIO++
		g.closeFD(p, fdIO)
	}
	g.carried++
	return true
}

// leaderStill reports whether p's leader has not run since the last scan's
// schedstat read: the schedstat just read (ok) equals that one and the
// last stat did not show the leader running (see Generator).
func (p *proc) leaderStill(sched schedFields, ok bool) bool {
	return ok && p.hasSched && sched == p.sched && p.hasState && p.state != 'R'
}

// readSched reads the schedstat of p for the gate. ok is false when the
// gate cannot be used this scan: no schedstat (remembered for p), an
// error, malformed content (reported) or pcount 0.
func (g *Generator) readSched(p *proc, base int) (sf schedFields, ok bool) {
	if g.noGate || p.noSched {
		return sf, false
	}
	data, err := g.readKept(p, fdSched, base, 0)
	return g.gateSched(data, err, &p.noSched)
}

// gateSched parses a schedstat read for the gate (of a process or a
// thread). A file that is missing or not readable sets *noSched: the gate
// is off for that task from then on.
func (g *Generator) gateSched(data []byte, err error, noSched *bool) (schedFields, bool) {
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || isPermission(err) {
			*noSched = true
		}
		return schedFields{}, false
	}
	sf, err := parseSchedstat(data)
	if err != nil {
		g.parseErr(err)
		return sf, false
	}
	return sf, sf.pcount != 0
}

// statusOf returns the status values of p: those of the last scan when
// still says the leader has not run since, read otherwise.
func (g *Generator) statusOf(p *proc, base int, still bool) (statusFields, bool) {
	if still && p.hasStatus {
		g.skippedStatus++
		// Kept descriptors go to files read every scan first (setTier).
		g.closeFD(p, fdStatus)
		return p.status, true
	}
	data, err := g.readKept(p, fdStatus, base, 0)
	return g.keepStatus(data, err, &p.status, &p.hasStatus)
}

// keepStatus parses a status read (of a process or a thread) into *status
// for the next scan's gate; *has says whether *status holds this scan's.
func (g *Generator) keepStatus(data []byte, err error, status *statusFields, has *bool) (statusFields, bool) {
	*has = false
	if err != nil {
		return statusFields{}, false
	}
	st, err := parseStatus(data)
	if err != nil {
		g.parseErr(err)
		return statusFields{}, false
	}
	*status, *has = st, true
	return st, true
}

// ioOf returns the io values of p: those of the last scan when still says
// no thread of p has run since, read otherwise.
func (g *Generator) ioOf(p *proc, base int, still bool) (ioFields, bool) {
	if still && p.hasIO {
		g.skippedIO++
		g.closeFD(p, fdIO)
		return p.io, true
	}
	p.hasIO = false
	data, err := g.readKept(p, fdIO, base, 0)
	if err != nil {
		if isPermission(err) {
			p.noIO = true
		}
		return ioFields{}, false
	}
	io, err := parseIO(data)
	if err != nil {
		g.parseErr(err)
		return ioFields{}, false
	}
	p.io, p.hasIO = io, true
	return io, true
}

// resetProc makes p the state of a process seen for the first time,
// reusing its buffers when a PID was reused. The descriptors kept stay:
// the stat just read through them is the new process's, and any other
// still bound to the old process fails its next read and is opened anew.
func (g *Generator) resetProc(p *proc, start uint64) {
	threads := p.threads
	g.dropThreads(p)
	*p = proc{start: start, comm: p.comm[:0], cmdline: p.cmdline[:0], threads: threads, tids: p.tids[:0], fds: p.fds}
}

// emitProc writes the series that come from the stat file.
func (g *Generator) emitProc(s *emit.Scan, name []byte, st *statFields) {
	s.Begin(mCPU).LabelBytes("pid", name).Label("mode", "user").Value(float64(st.utime) / userHZ)
	s.Begin(mCPU).LabelBytes("pid", name).Label("mode", "system").Value(float64(st.stime) / userHZ)
	s.Begin(mRSS).LabelBytes("pid", name).Value(float64(st.rss) * g.pageSize)
	s.Begin(mVirtual).LabelBytes("pid", name).Value(float64(st.vsize))
	s.Begin(mThreads).LabelBytes("pid", name).Value(float64(st.numThreads))
	s.Begin(mMinFlt).LabelBytes("pid", name).Value(float64(st.minflt))
	s.Begin(mMajFlt).LabelBytes("pid", name).Value(float64(st.majflt))
	if g.hasBtime {
		s.Begin(mStartTime).LabelBytes("pid", name).Value(float64(g.btime) + float64(st.starttime)/userHZ)
	}
}

// emitState writes proc_pid_state for a process (tid nil) or a thread,
// after the old state's series with 0 when the state changed.
func (g *Generator) emitState(s *emit.Scan, pid, tid []byte, last *byte, has *bool, state byte) {
	if *has && *last != state {
		s.Begin(mState).LabelBytes("pid", pid)
		if tid != nil {
			s.LabelBytes("tid", tid)
		}
		s.Label("state", stateName(*last)).Force(0)
	}
	*last, *has = state, true
	s.Begin(mState).LabelBytes("pid", pid)
	if tid != nil {
		s.LabelBytes("tid", tid)
	}
	s.Label("state", stateName(state)).Value(1)
}

// emitInfo writes proc_pid_info, after the old label set with 0 when it
// changed. The cmdline is read only when the process is new or its comm
// changed.
func (g *Generator) emitInfo(s *emit.Scan, name []byte, base int, p *proc, st *statFields, uid uint64) {
	commChanged := !p.hasInfo || !bytes.Equal(p.comm, st.comm)
	cmdChanged := false
	if commChanged {
		g.cmdline = g.cmdline[:0]
		// One byte past the cap tells a cut command line from a whole one.
		if data, err := g.read(base, "cmdline", g.opts.CmdlineMaxBytes+1); err == nil {
			g.cmdline = appendCmdline(g.cmdline, data, g.opts.CmdlineMaxBytes)
		}
		cmdChanged = !bytes.Equal(p.cmdline, g.cmdline)
	}
	if p.hasInfo && (commChanged || cmdChanged || p.ppid != st.ppid || p.uid != uid) {
		g.infoSeries(s, name, p).Force(0)
	}
	if commChanged {
		p.comm = append(p.comm[:0], st.comm...)
	}
	if cmdChanged {
		p.cmdline = append(p.cmdline[:0], g.cmdline...)
	}
	p.ppid, p.uid, p.hasInfo = st.ppid, uid, true
	g.infoSeries(s, name, p).Value(1)
}

// infoSeries begins the proc_pid_info series of p's current label set.
func (g *Generator) infoSeries(s *emit.Scan, name []byte, p *proc) *emit.Scan {
	return s.Begin(mInfo).LabelBytes("pid", name).LabelBytes("comm", p.comm).
		LabelInt("ppid", p.ppid).LabelInt("uid", int64(p.uid)).LabelBytes("cmdline", p.cmdline)
}
