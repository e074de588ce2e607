package procgen

import "bytes"

// Idle user processes whose stat is not read.
//
// Most processes of a host sleep through most scans (daemons, shells,
// idle workers), and each still costs the two reads of every idle process:
// schedstat for the gate and stat. kthread.go leaves a kernel thread's
// stat unread when nothing in it can have changed; a user process with one
// thread gets the same when three more things hold, because two of its
// stat fields can change while it does not run: its memory, which reclaim
// can take from it, and its parent, which can exit. The stat file, field
// by field, for a process with one thread (the leader, the only one, so
// that its schedstat is the whole process's) that has not run since the
// last stat read (leaderStill: schedstat unchanged, through a descriptor
// kept from before, which tells a reused PID apart as for kernel threads):
//
//   - utime, stime, minflt, majflt, vsize, num_threads, comm: changed only
//     by the process itself, or counted only while it runs (see
//     kthread.go; since Linux 5.9 a fault another process causes through
//     get_user_pages_remote is not counted to this one).
//   - starttime: fixed for the process.
//   - state: as for kernel threads, trusted only when a loadavg read of
//     this scan counted the generator alone as runnable (oneRun): the
//     process was not runnable at that instant, so the state written, S,
//     is its state then. Only S is trusted (a stopped, traced, zombie or
//     uninterruptible process is read).
//   - rss: the pages the process maps, which it changes itself, except
//     that reclaim unmaps pages from processes that do not run (kswapd,
//     another task's direct reclaim, a cgroup's limit or memory.reclaim,
//     swapping out, khugepaged filling a huge page, the OOM reaper) and
//     swapoff maps pages back. Each of those moves a counter of
//     /proc/vmstat (pgscan_*, pswpout, pswpin, zswpout,
//     thp_collapse_alloc, oom_kill), read whole at the start of every
//     scan: the stat is left unread only while their sum has not moved
//     since the scan in which it was last read (reclaimEpoch). Then no
//     reclaim ran between that read and this scan's start.
//   - ppid: changes when the parent exits (the process is given to a
//     subreaper or init). It is left unread only when the parent, by its
//     PID, is a process with a lower PID (visited earlier in the scan, as
//     both listings go up in PID order) that this scan saw alive (not Z
//     or X) and that started no later than the child (not a process that
//     took the PID of a parent gone since). PID 1 (ppid 0) has no parent
//     in its namespace to lose; any other process with ppid 0 (its parent
//     in an outer namespace, as for a `docker exec`) can be given to PID 1
//     and is read.
//
// status and io hold on the schedstat gate as for any process with one
// thread (see Generator), so the series written are those a read would
// have given, as of the scan's start for memory and of the loadavg read
// for the state. What escapes: a parent that exits after its own visit in
// this scan and before its child's (the child's new parent is written the
// next scan, for within the milliseconds of one scan); pages mapped into
// the process by another one (a debugger's PTRACE_POKEDATA,
// process_vm_writev, /proc/PID/mem), or unmapped without reclaim (another
// process truncating a file the process maps, process_madvise's
// MADV_PAGEOUT of clean file pages, a userfaultfd handler's UFFDIO_MOVE,
// KSM merging a page into the zero page with use_zero_pages); a task of
// another thread group that
// shares the process's memory (clone with CLONE_VM but not CLONE_THREAD;
// a vfork parent waits in D until its child execs, and is read); and the
// freezer, which puts a sleeping task in its frozen state (shown D)
// without waking it. For those, every userStatEvery-th scan reads the
// stat anyway. A busy host,
// where loadavg counts other runnable tasks, or one that reclaims memory
// every second, reads every stat.
const userStatEvery = 10

// userCandidate reports whether p, as its last stat read showed it, is a
// user process whose stat userStill may leave unread: one thread, asleep,
// its parent known (proc_pid_info written).
func (p *proc) userCandidate() bool {
	return !p.kthread && p.oneThread && p.hasState && p.state == 'S' && p.hasInfo
}

// userStill reports whether the stat of process pid (p) need not be read
// this scan (see above): it was a sleeping user process with one thread,
// it has not run since (leaderStill, on a schedstat read through a
// descriptor kept from before), this scan's loadavg counted only the
// generator, reclaim has not run since its stat was read, its parent is
// alive, and the backstop is not due.
func (g *Generator) userStill(pid int32, p *proc, sched schedFields, schedOK bool) bool {
	if !p.userCandidate() || !g.oneRun || g.noKCarry || !(g.viaKept || g.kByPath) ||
		!g.reclaimOK || p.reclaimEpoch != g.reclaimEpoch || p.sinceStat+1 >= userStatEvery ||
		!p.leaderStill(sched, schedOK) {
		return false
	}
	return g.parentAlive(pid, p)
}

// parentAlive reports whether the parent of process pid (p), by the ppid
// of its last stat, is alive as this scan saw it (see above).
func (g *Generator) parentAlive(pid int32, p *proc) bool {
	if p.ppid <= 0 {
		return p.ppid == 0 && pid == 1
	}
	if p.ppid >= int64(pid) {
		return false
	}
	q := g.procs[int32(p.ppid)]
	if q == nil || q.seen != g.cycle || !q.hasState || q.start > p.start {
		return false
	}
	switch q.state {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// readReclaim reads /proc/vmstat at the start of a scan and moves
// reclaimEpoch on when the sum of its reclaim counters moved (see above).
// vmstat is a seq_file of one record per line, which hands out about a
// page per read: it is read whole (ReadKept, until a read returns
// nothing, through a descriptor kept open) once a scan, since the counters
// of a longer one than this page (more zones, NUMA nodes, a newer kernel)
// lie past its first 4 KiB. reclaimOK is false when the file
// cannot be read or has none of the counters: then every user process's
// stat is read.
func (g *Generator) readReclaim() {
	data, err := g.r.ReadKept(&g.vmstat)
	if err != nil {
		g.reclaimOK = false
		return
	}
	sum, ok := parseReclaim(data)
	if !ok {
		g.reclaimOK = false
		return
	}
	if !g.reclaimOK || sum != g.reclaimSum {
		g.reclaimEpoch++
	}
	g.reclaimSum, g.reclaimOK = sum, true
}

// reclaimPrefixes name the /proc/vmstat counters that move when memory is
// taken from (or, for khugepaged, mapped into) a process that does not run.
var reclaimPrefixes = [...][]byte{
	[]byte("pgscan"),
	[]byte("pswpout "),
	[]byte("pswpin "),
	[]byte("zswpout "),
	[]byte("thp_collapse_alloc "),
	[]byte("oom_kill "),
}

// parseReclaim returns the sum of the reclaim counters of a /proc/vmstat
// ("name value" lines). ok is false when it has no pgscan line (not the
// kernel's vmstat) or a counter's value is not a number.
func parseReclaim(data []byte) (sum uint64, ok bool) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		for i, p := range reclaimPrefixes {
			if !bytes.HasPrefix(line, p) {
				continue
			}
			sp := bytes.LastIndexByte(line, ' ')
			if sp < 0 {
				return 0, false
			}
			v, vok := parseDecimal(line[sp+1:])
			if !vok || v < 0 {
				return 0, false
			}
			sum += uint64(v)
			if i == 0 {
				ok = true
			}
			break
		}
	}
	return sum, ok
}
