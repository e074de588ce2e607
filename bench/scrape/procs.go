package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process, its output going to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process is reaped
	err  error         // Wait's result; read only after done
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// procs starts child processes and kills them all at the end. Each child is
// its own process group (so Ctrl-C reaches only this program, which then
// kills them in order) and gets SIGKILL if this program dies first.
type procs struct {
	dir    string
	onExit func(error) // called when a child exits before stopAll

	mu       sync.Mutex
	list     []*proc
	stopping atomic.Bool
}

func newProcs(dir string, onExit func(error)) *procs {
	return &procs{dir: dir, onExit: onExit}
}

// start runs bin with args, output to DIR/name.log.
func (ps *procs) start(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(ps.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cannot create the log of %s: %w", name, err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		if !ps.stopping.Load() {
			ps.onExit(fmt.Errorf("%s (pid %d) exited during the run: %v", name, p.pid(), p.err))
		}
	}()
	return p, nil
}

// stopAll kills every child (and its process group) with SIGKILL, newest
// first, and reaps it. Nothing they hold is worth a graceful stop: the data
// goes with the temp dir.
func (ps *procs) stopAll() {
	ps.stopping.Store(true)
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		p := list[i]
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			logf("%s (pid %d) not reaped 5s after SIGKILL", p.name, p.pid())
		}
	}
}

// printTails writes the end of every child's log to w.
func (ps *procs) printTails(w io.Writer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.list {
		fmt.Fprintf(w, "---- tail of %s (%s)\n%s\n", p.name, p.log, tail(p.log, 3000))
	}
}

// tail returns about the last n bytes of the file at path, from a line start.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return err.Error()
	}
	if off > 0 {
		for i, c := range b {
			if c == '\n' {
				b = b[i+1:]
				break
			}
		}
	}
	return string(b)
}
