package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// sleepers is how many idle processes topUp started.
var sleepers int

// countProcesses counts the processes of the host (the numeric entries of
// /proc).
func countProcesses() int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}

// topUp starts idle `sleep` processes until the host has n, so that side
// A's per-process series, and so its figures per series-second, come from
// the same population on every machine. The returned func kills them.
func topUp(n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	missing := n - countProcesses()
	if missing <= 0 {
		return stop, nil
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return stop, fmt.Errorf("-host-procs %d: %w", n, err)
	}
	for range missing {
		c := exec.Command(sleep, "86400")
		// Their own process group: a Ctrl-C reaches only the harness,
		// which kills them on the way out.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			return stop, fmt.Errorf("-host-procs %d: cannot start an idle process: %w", n, err)
		}
		cmds = append(cmds, c)
	}
	sleepers = len(cmds)
	logf("started %d idle processes: the host has %d (-host-procs %d)", len(cmds), countProcesses(), n)
	return stop, nil
}
