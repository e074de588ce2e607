package procgen

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/procfleet/procfleet/agent/procfile"
)

// Files of a process whose descriptors the generator keeps open between
// scans: reading an open /proc/PID file again with pread costs about a
// third of opening, reading and closing it. cmdline (read once per
// process) is opened each time; a thread keeps the descriptors of its
// stat and schedstat out of what the processes leave (setTier), and opens
// its status each time, which the schedstat gate lets through only when
// the thread ran.
//
// The order is the order of priority when the budget cannot hold all
// four for every process: schedstat is read every scan, and only a
// schedstat read through a descriptor kept from before lets an idle
// process's or thread's stat go unread (kthread.go, idle.go, threads.go);
// stat is read every scan but then; status and io only when the schedstat
// gate (see Generator) lets them through, so on a mostly idle host their
// descriptors are worth the least.
const (
	fdSched = iota
	fdStat
	fdStatus
	fdIO
	nFDs
)

var fdFiles = [nFDs]string{"schedstat", "stat", "status", "io"}

// Files of a thread whose descriptors the generator keeps, in the same
// order of priority.
const (
	tfdSched = iota
	tfdStat
	nThreadFDs
)

var threadFDFiles = [nThreadFDs]string{"schedstat", "stat"}

// procSuperMagic is the file system type of procfs (statfs(2)).
const procSuperMagic = 0x9fa0

// isProcfs reports whether root is a procfs mount.
func isProcfs(root string) bool {
	var fs syscall.Statfs_t
	return syscall.Statfs(root, &fs) == nil && fs.Type == procSuperMagic
}

// fdBudget returns how many descriptors the generator may keep open: half
// the soft limit on open files (the Go runtime raises it to the hard
// limit at start), leaving the rest to the agent's connections and spool;
// none when the limit is below 8192, and none when root is not a procfs
// mount: a descriptor of a regular file (a fixture tree) would go on
// reading a file that was replaced, where procfs regenerates every read.
//
// There is no fixed cap besides: each kept descriptor holds about a page
// of kernel memory (its seq_file buffer), and the generator keeps at most
// two per idle process (stat and schedstat; the status and io descriptors
// are given back when the gate skips them, see collectProc), so the kernel
// memory grows with the processes watched, about 9 KiB each against the
// 50 KiB and more the kernel already spends on every process (kernel
// stack, task_struct, page tables). setTier spreads the budget over the
// processes in the order of fdFiles.
func fdBudget(root string) int {
	if !isProcfs(root) {
		return 0
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 8192 {
		return 0
	}
	return int(min(rl.Cur/2, 1<<30))
}

// setTier decides, once per scan, which files keep their descriptors:
// those before fdFiles[g.tier] for every process, fdFiles[g.tier] while
// the budget lasts (first come, first kept), none after. It assumes the
// process count of the previous scan and an eighth more, so that the
// budget goes to schedstat for every process before it goes to stat for
// some, and so on. On the first scan nothing is known: every file may be
// kept, and the descriptors past the tier are given back at their next
// read.
//
// Threads keep descriptors out of what is left once every process could
// keep all of its own, so that a process never goes without for a thread,
// tiered the same way over the threads of the previous scan (threadTier):
// schedstat for every thread before stat for any.
func (g *Generator) setTier() {
	n := len(g.procs) + len(g.procs)/8
	g.threadBudget = max(g.fdMax-nFDs*n, 0)
	g.threadTier = nThreadFDs
	if g.opts.Threads {
		nt := g.TrackedThreads()
		if nt += nt / 8; nt > 0 {
			g.threadTier = min(g.threadBudget/nt, nThreadFDs)
		}
	}
	if n == 0 {
		g.tier = nFDs
		return
	}
	g.tier = min(g.fdMax/n, nFDs)
}

// readKept reads file i of process p, through its kept descriptor when it
// has one, opening and keeping one otherwise while the budget allows. Errors
// are recorded as read records them.
func (g *Generator) readKept(p *proc, i, base int, limit int) ([]byte, error) {
	if i > g.tier {
		g.closeFD(p, i)
		g.viaKept = false
		return g.read(base, fdFiles[i], limit)
	}
	return g.readThrough(&p.fds[i], nil, g.fdMax, base, fdFiles[i], limit)
}

// readThrough reads file under the directory g.path[:base] through the
// descriptor *fd (plus one; 0 is none) when there is one, opening it and
// keeping it in *fd otherwise while g.kept (and *count, when not nil) stay
// under max. g.viaKept tells whether the data came through a descriptor
// kept from an earlier read: such a descriptor reads the task it was opened
// on or fails (ESRCH), even once the PID is another task's.
func (g *Generator) readThrough(fd *int32, count *int, max, base int, file string, limit int) ([]byte, error) {
	g.viaKept = false
	if *fd != 0 {
		data, err := g.r.ReadFD(int(*fd-1), g.setPath(base, file), limit)
		if err == nil {
			g.viaKept = true
			return data, nil
		}
		// The task exited, or the ID belongs to another one now: the
		// descriptor is of no more use. Try the path, which tells which.
		g.closeKept(fd, count)
	}
	if g.kept >= g.fdMax || (count != nil && *count >= max) {
		return g.read(base, file, limit)
	}
	pathz := g.setPath(base, file)
	f, err := procfile.OpenZ(pathz, syscall.O_RDONLY)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// Out of descriptors after all: keep none from now on.
			g.fdMax = g.kept
			return g.read(base, file, limit)
		}
		if !quiet(err) {
			g.fail(fmt.Errorf("cannot read: %w", err))
		}
		return nil, err
	}
	data, err := g.r.ReadFD(f, pathz, limit)
	if err != nil {
		_ = syscall.Close(f)
		if !quiet(err) {
			g.fail(fmt.Errorf("cannot read: %w", err))
		}
		return nil, err
	}
	*fd = int32(f + 1)
	g.kept++
	if count != nil {
		*count++
	}
	return data, nil
}

// closeKept closes the kept descriptor *fd, if any, counted in g.kept and
// in *count when not nil.
func (g *Generator) closeKept(fd *int32, count *int) {
	if *fd != 0 {
		_ = syscall.Close(int(*fd - 1))
		*fd = 0
		g.kept--
		if count != nil {
			*count--
		}
	}
}

// closeFD closes the kept descriptor i of p, if any.
func (g *Generator) closeFD(p *proc, i int) {
	g.closeKept(&p.fds[i], nil)
}

// closeFDs closes every kept descriptor of p and of its threads.
func (g *Generator) closeFDs(p *proc) {
	for i := range nFDs {
		g.closeFD(p, i)
	}
	for _, t := range p.threads {
		g.closeThreadFDs(t)
	}
}

// closeThreadFDs closes every kept descriptor of t.
func (g *Generator) closeThreadFDs(t *thread) {
	for i := range nThreadFDs {
		g.closeKept(&t.fds[i], &g.threadKept)
	}
}

// Close closes the descriptors the generator keeps open. The generator may
// be used again afterwards; it opens them anew.
func (g *Generator) Close() error {
	for _, p := range g.procs {
		g.closeFDs(p)
	}
	g.closeDiscovery()
	return g.vmstat.Close()
}
