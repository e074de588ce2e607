// Package procgen holds the per-process generator: for every process of a
// procfs tree it emits CPU time, memory, faults, context switches, I/O,
// start time, state and an info series, and with Options.Threads the CPU
// time, faults, context switches and state of every thread.
//
// The generator reads /proc/PID/{schedstat,stat,status,io,cmdline} (and
// task/TID/{schedstat,stat,status}) with raw system calls into one reused
// buffer and parses them with pure, allocation-free functions, so that a scan of
// 10,000 processes allocates nothing in steady state besides what the
// tracker needs for new series. See Generator for the series it emits.
package procgen

import (
	"errors"
	"fmt"
)

// Options configure a Generator.
type Options struct {
	// ProcRoot is the procfs mount point. Default "/proc".
	ProcRoot string
	// Threads adds per-thread series, read from /proc/PID/task/TID, with a
	// tid label. Default false: a host with many threads multiplies the
	// cost of a scan and the number of series by its threads per process.
	Threads bool
	// CmdlineMaxBytes caps the cmdline label of proc_pid_info, in bytes; the
	// cut falls on a UTF-8 boundary. Default 256. Longer command lines
	// (Java class paths) make every info series, and the tracker's memory,
	// that much larger.
	CmdlineMaxBytes int
}

// maxCmdlineCap bounds CmdlineMaxBytes: a label value larger than this
// would not fit comfortably in one emit buffer line.
const maxCmdlineCap = 32 << 10

func (o Options) withDefaults() Options {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.CmdlineMaxBytes == 0 {
		o.CmdlineMaxBytes = 256
	}
	return o
}

// Validate reports options that cannot work. Zero values stand for the
// defaults and are valid.
func (o Options) Validate() error {
	var errs []error
	if o.CmdlineMaxBytes < 0 || o.CmdlineMaxBytes > maxCmdlineCap {
		errs = append(errs, fmt.Errorf("procgen: CmdlineMaxBytes %d out of range, want 0 (default 256) to %d",
			o.CmdlineMaxBytes, maxCmdlineCap))
	}
	for i := 0; i < len(o.ProcRoot); i++ {
		if o.ProcRoot[i] == 0 {
			errs = append(errs, fmt.Errorf("procgen: ProcRoot %q holds a NUL byte", o.ProcRoot))
			break
		}
	}
	return errors.Join(errs...)
}
