package procgen

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"syscall"

	"github.com/procfleet/procfleet/agent/emit"
)

// Threads (Options.Threads) get what processes get.
//
// The schedstat gate. Before a thread's stat the generator reads its
// /proc/PID/task/TID/schedstat. What the thread's status gives (its own
// voluntary and nonvoluntary context switches) changes only while it
// runs, and the gate is the one of a process's leader (see Generator):
// when the three schedstat fields are those of the last scan and the last
// scan's stat did not show the thread running (R), the status values of
// the last scan are written again without reading the file. stat is
// always read: a thread woken up but not yet on a CPU is R in stat with
// nothing new in schedstat.
//
// Carried series. A thread whose status the gate keeps and whose stat is
// byte for byte the last scan's (a 64-bit hash) has every series value of
// the last scan: Scan.Carry stands for its series, from their positions
// in the last run of the same Scan, writing those whose refresh is due.
//
// Listing only to find new threads. A scan first reads the threads the
// last scan read, by TID, without listing the task directory. It lists
// the directory, and reads only the TIDs it did not just read, unless
// every one of those reads succeeded, none found a new thread behind a
// known TID (another start time), and their number equals the thread
// count of the process's stat (num_threads, read before them). That count
// is exact: the kernel counts a thread (signal->nr_threads) in the same
// critical section that adds it to the thread list the directory lists
// (copy_process), and uncounts it when it removes it (__exit_signal). The
// known threads were created before the last scan, so those still there
// were there when the stat was read; when they are as many as the stat
// counted, no other thread was, and a thread created after that read is
// counted by the next scan's stat. A thread that exited fails its read
// (ESRCH through a kept descriptor, ENOENT by path) and makes the scan
// list. Every fullListEvery-th scan of a process lists anyway, as a
// backstop.
//
// Kept descriptors. A thread keeps its stat and schedstat open (pread)
// out of what the processes leave of the budget (setTier).

// threadResult is what collectThread did with a thread.
type threadResult int

const (
	threadRead   threadResult = iota // read, and known since the last scan
	threadNew                        // read for the first time, or a new thread behind a known TID
	threadFailed                     // not read this scan, kept: tried again next scan
	threadGone                       // exited: dropped
)

// collectThreads reads and writes the threads of process p, whose /proc
// directory is g.path[:base]: first those of the last scan, by TID, then,
// when they may not be all, the new ones in the task directory.
func (g *Generator) collectThreads(s *emit.Scan, pidName []byte, base int, p *proc) {
	if p.threads == nil {
		p.threads = make(map[int32]*thread)
	}
	g.path = append(g.path[:base], "task/"...)
	taskBase := len(g.path)
	all := true // every thread of the last scan read, none new
	w := 0
	for _, tid := range p.tids {
		t := p.threads[tid]
		g.tidName = strconv.AppendInt(g.tidName[:0], int64(tid), 10)
		g.path = append(append(g.path[:taskBase], g.tidName...), '/')
		switch g.collectThread(s, pidName, g.tidName, tid, len(g.path), p, t) {
		case threadRead:
			p.tids[w] = tid
			w++
		case threadNew, threadFailed:
			p.tids[w] = tid
			w++
			all = false
		case threadGone:
			g.closeThreadFDs(t)
			delete(p.threads, tid)
			all = false
		}
	}
	p.tids = p.tids[:w]
	p.sinceList++
	if all && int64(w) == p.numThreads && p.sinceList < fullListEvery && !g.noSeek {
		g.taskUnlisted++
		return
	}
	p.sinceList = 0
	g.taskListed++
	g.listThreads(s, pidName, taskBase, p)
	if len(p.threads) != len(p.tids) {
		// A thread created and not read (a failed first read).
		for tid, t := range p.threads {
			if t.seen != g.cycle {
				g.closeThreadFDs(t)
				delete(p.threads, tid)
			}
		}
	}
}

// listThreads lists the task directory g.path[:taskBase] and reads the
// threads in it that collectThreads did not read already.
func (g *Generator) listThreads(s *emit.Scan, pidName []byte, taskBase int, p *proc) {
	g.path = append(g.path[:taskBase-1], 0) // without the slash, for errors
	err := g.taskDir.open(g.path)
	g.path[taskBase-1] = '/'
	if err != nil {
		if !quiet(err) {
			g.fail(fmt.Errorf("cannot list threads: %w", err))
		}
		return
	}
	defer g.taskDir.close()
	for {
		tidName, err := g.taskDir.next()
		if err != nil {
			if !quiet(err) {
				g.fail(fmt.Errorf("cannot list threads in %s: %w", g.path[:taskBase-1], err))
			}
			return
		}
		if tidName == nil {
			return
		}
		tid, ok := parsePID(tidName)
		if !ok {
			continue
		}
		t := p.threads[tid]
		if t != nil && t.seen == g.cycle {
			continue // read by TID just now
		}
		// tidName stays valid: collectThread does not list.
		g.path = append(append(g.path[:taskBase], tidName...), '/')
		switch g.collectThread(s, pidName, tidName, tid, len(g.path), p, t) {
		case threadRead, threadNew, threadFailed:
			if t == nil && p.threads[tid] == nil {
				continue // a failed first read: nothing to keep
			}
			p.tids = append(p.tids, tid)
		case threadGone:
			if t != nil {
				g.closeThreadFDs(t)
				delete(p.threads, tid)
			}
		}
	}
}

// collectThread reads and writes one thread of p, whose directory is
// g.path[:base]; t is what the generator remembers of it, nil for a
// thread not seen before.
func (g *Generator) collectThread(s *emit.Scan, pidName, tidName []byte, tid int32, base int, p *proc, t *thread) threadResult {
	fresh := t == nil
	if fresh {
		t = &thread{}
	}
	// schedstat first, as for a process: the status values the gate keeps
	// must hold as of this read.
	if !fresh && (t.kthread || t.sleeping) {
		g.recheckRun()
	}
	sched, schedOK := g.readThreadSched(t, base)
	if !fresh && (g.kthreadThreadStill(t, sched, schedOK, g.viaKept) || g.threadStill(t, sched, schedOK, g.viaKept)) &&
		g.carryThread(s, t) {
		// The thread of a kernel thread, or a sleeping thread, that
		// cannot have changed: its stat is not read (see kthreadStill
		// and threadStill).
		g.skippedStat++
		t.sinceStat++
		return threadRead
	}
	data, err := g.readThreadKept(t, tfdStat, base)
	if err != nil {
		if fresh {
			g.closeThreadFDs(t)
		}
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
			return threadGone
		}
		if !fresh {
			t.keepUnread(g.cycle)
		}
		return threadFailed
	}
	sum := maphash.Bytes(g.seed, data)
	still := !fresh && t.still(sched, schedOK)
	if still && sum == t.statSum && g.carryThread(s, t) {
		t.sinceStat = 0
		return threadRead
	}
	st, err := parseStat(data)
	if err != nil {
		g.parseErr(err)
		if fresh {
			g.closeThreadFDs(t)
		} else {
			t.keepUnread(g.cycle)
		}
		return threadFailed
	}
	reset := fresh || t.start != st.starttime
	if reset {
		// A new thread, or a TID reused: the descriptors kept are the new
		// thread's (those of an exited one fail and are reopened by path).
		*t = thread{start: st.starttime, fds: t.fds}
		p.threads[tid] = t
		still = false
	}
	t.seen = g.cycle
	// After a reset the schedstat read may predate the stat that told the
	// new thread apart: it is no basis for the next scan.
	t.sched, t.hasSched = sched, schedOK && !reset
	t.kthread, t.sinceStat = isStillKthread(tid, &st), 0
	t.sleeping = !t.kthread && st.state == 'S'

	from := s.Mark()
	s.Begin(mCPU).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Label("mode", "user").Value(float64(st.utime) / userHZ)
	s.Begin(mCPU).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Label("mode", "system").Value(float64(st.stime) / userHZ)
	s.Begin(mMinFlt).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Value(float64(st.minflt))
	s.Begin(mMajFlt).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Value(float64(st.majflt))
	if status, ok := g.threadStatusOf(t, base, still); ok && status.hasCtxt {
		s.Begin(mCtxt).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Label("kind", "voluntary").Value(float64(status.voluntary))
		s.Begin(mCtxt).LabelBytes("pid", pidName).LabelBytes("tid", tidName).Label("kind", "nonvoluntary").Value(float64(status.nonvoluntary))
	}
	g.emitState(s, pidName, tidName, &t.state, &t.hasState, st.state)
	t.statSum, t.markFrom, t.markCount = sum, from, s.Mark()-from
	if reset || from < 0 {
		t.markCount = 0
	}
	if reset {
		return threadNew
	}
	return threadRead
}

// carryThread writes the series of t as the last scan did, once the caller
// established that its stat has not changed since and that it has not run
// (still), when its status holds too. It reports whether it did.
func (g *Generator) carryThread(s *emit.Scan, t *thread) bool {
	if !g.carryOK || !t.hasStatus || t.markCount == 0 || t.seen != g.cycle-1 {
		return false
	}
	from := s.Mark()
	if !s.Carry(t.markFrom, t.markCount) {
		return false
	}
	t.seen, t.markFrom = g.cycle, from
	g.threadStatus++
	g.threadCarried++
	return true
}

// kthreadThreadStill is kthreadStill for the thread of a kernel thread
// (task/TID of a kernel thread's own TID, its only thread).
func (g *Generator) kthreadThreadStill(t *thread, sched schedFields, schedOK, viaKept bool) bool {
	return t.kthread && g.oneRun && !g.noKCarry && (viaKept || g.kByPath) &&
		t.sinceStat+1 < fullListEvery && t.still(sched, schedOK)
}

// threadStill reports whether the stat of t, a thread that its last stat
// read showed asleep (S), need not be read this scan. What a thread's
// series take from its stat (its own CPU times and faults, and its state)
// changes only while it runs, but for the state, which a wakeup makes R
// before the thread runs: so as for a kernel thread (kthreadStill), it has
// not run since (still, on a schedstat read through a descriptor kept from
// before), and this scan's loadavg counted the generator alone. Memory and
// parent, which reclaim and a parent's exit change for a process that
// does not run (idle.go), are not written per thread. The freezer, which
// puts a sleeping task in its frozen state without waking it, escapes
// until every userStatEvery-th scan, which reads the stat anyway.
func (g *Generator) threadStill(t *thread, sched schedFields, schedOK, viaKept bool) bool {
	return t.sleeping && g.oneRun && !g.noKCarry && (viaKept || g.kByPath) &&
		t.sinceStat+1 < userStatEvery && t.still(sched, schedOK)
}

// keepUnread keeps t, which could not be read in this scan (cycle), for
// the next: its carry positions are those of the run before this one's,
// no basis for the next, and its schedstat basis is no longer the last
// scan's.
func (t *thread) keepUnread(cycle uint64) {
	t.seen, t.markCount, t.hasSched = cycle, 0, false
}

// still reports whether t has not run since the last scan's schedstat
// read, as leaderStill does for a process.
func (t *thread) still(sched schedFields, ok bool) bool {
	return ok && t.hasSched && sched == t.sched && t.hasState && t.state != 'R'
}

// readThreadSched reads the schedstat of t for the gate, as readSched does
// for a process.
func (g *Generator) readThreadSched(t *thread, base int) (sf schedFields, ok bool) {
	if g.noGate || t.noSched {
		return sf, false
	}
	data, err := g.readThreadKept(t, tfdSched, base)
	return g.gateSched(data, err, &t.noSched)
}

// threadStatusOf returns the status values of t: those of the last scan
// when still says the thread has not run since, read otherwise.
func (g *Generator) threadStatusOf(t *thread, base int, still bool) (statusFields, bool) {
	if still && t.hasStatus {
		g.threadStatus++
		return t.status, true
	}
	data, err := g.read(base, "status", 0)
	return g.keepStatus(data, err, &t.status, &t.hasStatus)
}

// readThreadKept reads file i of t through its kept descriptor, keeping
// one while the threads' share of the budget lasts and i is within the
// threads' tier (see setTier), and giving it back when the share shrank
// below what the threads keep or i fell out of the tier.
func (g *Generator) readThreadKept(t *thread, i, base int) ([]byte, error) {
	if i > g.threadTier {
		g.closeKept(&t.fds[i], &g.threadKept)
		g.viaKept = false
		return g.read(base, threadFDFiles[i], 0)
	}
	if t.fds[i] != 0 && g.threadKept > g.threadBudget {
		g.closeKept(&t.fds[i], &g.threadKept)
	}
	return g.readThrough(&t.fds[i], &g.threadKept, g.threadBudget, base, threadFDFiles[i], 0)
}

// dropThreads forgets the threads of p, closing their descriptors.
func (g *Generator) dropThreads(p *proc) {
	for _, t := range p.threads {
		g.closeThreadFDs(t)
	}
	clear(p.threads)
	p.tids = p.tids[:0]
}
