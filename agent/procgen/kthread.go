package procgen

import (
	"bytes"
	"math/rand/v2"
	"time"
)

// Kernel threads whose stat is not read.
//
// Most processes of a small host are kernel threads (61 of 74 on a fresh
// VM; on a large host hundreds: a ksoftirqd, migration, cpuhp and kworkers
// per CPU), and an idle one costs the two reads of every idle process:
// schedstat for the gate, and stat, which is read every scan because a
// process's memory and parent can change while it does not run. A kernel
// thread has neither: so when nothing else in its stat can have changed
// either, the scan reads its schedstat only and carries its series over
// (carryOver), as for a process whose stat is byte for byte the last
// one's. The stat file, field by field, for a kernel thread (PF_KTHREAD
// in its flags) that has not run since the last scan's schedstat read
// (leaderStill: schedstat unchanged, last stat not R):
//
//   - utime, stime, minflt, majflt: counted only for the running task
//     (the tick, or the fault handler of the faulting task). A remote
//     get_user_pages counted faults to another task before Linux 5.9,
//     but no task pages through a kernel thread's memory: it has none.
//   - rss, vsize: 0. do_task_stat takes them from get_task_mm, which is
//     NULL for a PF_KTHREAD task, even one that borrows a user mm
//     (kthread_use_mm).
//   - num_threads: 1 at the last read (required), and only a thread of
//     the group creates another.
//   - starttime: fixed for the task. A PID reused since is told apart by
//     the schedstat read itself: it must come through a descriptor kept
//     from an earlier scan (viaKept), which reads the task it was opened
//     on or fails with ESRCH once that task is gone, and then stat is read.
//   - ppid: a kernel thread is forked by kthreadd (PID 2), which never
//     exits, so it is never reparented; kthreadd's own parent is the idle
//     task (ppid 0). Other parents are not trusted (required: ppid 2, or
//     PID 2 with ppid 0).
//   - comm: only the task itself renames itself (prctl, exec; a write to
//     /proc/PID/comm is refused from outside its thread group), and a
//     kworker's name as /proc shows it (wq_worker_comm: its pool, the
//     work it runs or last ran) changes only while it runs. The exception
//     is creation: kthreadd forks the thread, which inherits the name
//     "kthreadd" and sleeps, and its creator renames it with
//     set_task_comm before waking it (__kthread_create_on_node). So a
//     kernel thread named "kthreadd" other than PID 2 is not trusted.
//   - state: only the task itself puts itself to sleep, parks or exits.
//     What changes it from outside is a wakeup: a task woken up and not
//     yet put on a CPU is R in stat with nothing new in its schedstat
//     (run delay and pcount are counted when it arrives on a CPU), and
//     is exactly what the state series is for (a starved ksoftirqd). So
//     the stat is left unread only when a read of /proc/loadavg in this
//     scan, at its start or again before this thread's schedstat
//     (recheckRun), counted one runnable task (nr_running(), which counts
//     every task on a run queue, running or waiting): the generator's
//     own. Then the thread was not runnable at that instant, which lies
//     after the last scan's stat read and before this scan's schedstat
//     read: had it been woken between the two, it would have been
//     runnable at that instant or run since. The state written is its
//     state at that instant, within the scan. What escapes: a thread in
//     the middle of a wakeup that queues it on another CPU's wake list
//     (TASK_WAKING, shown R, on no run queue until that CPU takes its
//     interrupt), and one moving between two run queues while
//     nr_running() adds them up, both for microseconds. The freezer
//     changes a sleeping thread's state without it running (frozen shows
//     D, thawed returns to its old state), so only S, I and P (parked)
//     are trusted, not D. A kernel thread cannot be stopped or traced.
//   - priority, nice, policy, flags, processor and the other fields can
//     change from outside (sched_setscheduler, a CPU bound by its
//     creator) but are not written.
//
// status (context switches, uid) and io change only while the thread
// runs, as for any process with one thread. So the series written are
// those a read would have given, with the state as of the loadavg read.
// A busy host, where loadavg counts other runnable tasks, reads every
// stat; so does a procfs of another PID namespace or one whose loadavg
// LXCFS serves (discovery is off: no counters are read), and every
// fullListEvery-th scan of a thread anyway, as a backstop against a
// change this reasoning missed.
//
// With Options.Threads, the one thread of a kernel thread (task/TID, TID
// the PID) is the same task, and its stat is left unread on the same
// terms (kthreadThreadStill).

// A scan's first loadavg read is at its start, when the agent's other
// generators and the host's periodic tasks often wake up with it. So when
// it counted other runnable tasks, loadavg is read again before the
// schedstat of a kernel thread (or idle process or thread, idle.go,
// threads.go) visited: after the first runCheckEvery of them, then after
// twice as many as the time before (8, 16, 32, ...), at most maxRunReads
// times a scan (a read costs about half of a stat read saved), so that a
// scan of n of them reads loadavg about log2(n/8) more times and the
// re-reads reach its end (10,000 threads: 10 re-reads, where a fixed
// interval stopped within the first 32). A read that counts the generator
// alone holds for every one whose schedstat is read after it, and whose
// last stat was read before it, which is every one visited later in the
// scan.
const (
	runCheckEvery = 8
	maxRunReads   = 12
)

// recheckRun reads loadavg again before the schedstat of a kernel thread
// or of an idle user process (idle.go) when no read of this scan has
// counted the generator alone yet (see above), after waiting for a quiet
// moment at the first of them (quietRun, below).
func (g *Generator) recheckRun() {
	if g.oneRun || g.runReads >= maxRunReads || !g.disc.able || g.noSeek || g.disc.fds[dLoadavg] == 0 {
		return
	}
	if !g.waited {
		g.waited = true
		if g.quietRun(); g.oneRun {
			return
		}
	}
	if g.runWait++; g.runWait < runCheckEvery<<g.runReads {
		return
	}
	g.runWait = 0
	g.runReads++
	g.oneRun = g.loadavgOne()
}

// loadavgOne reads loadavg through its kept descriptor and reports whether
// it counts one runnable task, the generator.
func (g *Generator) loadavgOne() bool {
	data, err := g.r.ReadFD(g.disc.fds[dLoadavg]-1, nil, 0)
	if err != nil {
		return false
	}
	running, _, _, ok := parseLoadavgPIDs(data)
	return ok && running == 1
}

// The first candidate of a scan whose first loadavg read counted other
// runnable tasks waits for a quiet moment first (quietRun): up to
// maxRunWaits times, a sleep of runWaitMin to runWaitMin+runWaitJitter
// and a loadavg read. What runs at the scan's start is mostly what wakes
// on the second with it: the agent's own host generators, the host's other
// 1 Hz collectors, a second agent. They are done within milliseconds, and
// a scan that reads loadavg after them leaves a candidate's stat unread
// where one that reads during them reads every stat (two agents side by
// side: 190 stats a scan left unread against fewer than 15, 17% less CPU;
// docs/performance.md). The sleep is jittered so that two scanners that
// wait alike do not wake together again. The wait delays the scan by at
// most maxRunWaits*(runWaitMin+runWaitJitter) (6 ms) and costs its loadavg
// reads, about two stat reads; on a host that stays busy it is lost, and
// the re-reads of recheckRun go on as before.
const (
	maxRunWaits   = 4
	runWaitMin    = 500 * time.Microsecond
	runWaitJitter = time.Millisecond
)

// quietRun is the wait described above: it sets oneRun when a loadavg read
// after a sleep counts the generator alone.
func (g *Generator) quietRun() {
	for range maxRunWaits {
		g.sleep(runWaitMin + rand.N(runWaitJitter))
		g.runWaits++
		if g.oneRun = g.loadavgOne(); g.oneRun {
			return
		}
	}
}

// Kernel constants for kthreadStill.
const (
	pfKthread   = 0x00200000 // PF_KTHREAD, include/linux/sched.h
	kthreaddPID = 2
)

var kthreaddComm = []byte("kthreadd")

// isStillKthread reports whether the stat st of process pid, just read,
// shows a kernel thread whose stat kthreadStill may leave unread in later
// scans: a kernel thread of kthreadd with one thread, named, asleep (S),
// idle (I) or parked (P).
func isStillKthread(pid int32, st *statFields) bool {
	if st.flags&pfKthread == 0 || st.numThreads != 1 {
		return false
	}
	switch st.state {
	case 'S', 'I', 'P':
	default:
		return false
	}
	if pid == kthreaddPID {
		return st.ppid == 0
	}
	return st.ppid == kthreaddPID && !bytes.Equal(st.comm, kthreaddComm)
}

// kthreadStill reports whether p is a kernel thread whose stat need not be
// read this scan (see above): its last stat showed one (isStillKthread),
// it has not run since (leaderStill, on a schedstat read through a
// descriptor kept from before: viaKept), this scan's loadavg counted only
// the generator as runnable, and the backstop is not due.
func (g *Generator) kthreadStill(p *proc, sched schedFields, schedOK, viaKept bool) bool {
	return p.kthread && g.oneRun && !g.noKCarry && (viaKept || g.kByPath) &&
		p.sinceStat+1 < fullListEvery && p.leaderStill(sched, schedOK)
}
