// Package benchproc holds what the benchmark programs (bench/e2e,
// bench/scrape) share: the child processes they run and the byte-counting
// proxy in front of each VictoriaMetrics.
package benchproc

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

// Proc is one child process, its output going to a log file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{} // closed once the process is reaped
	err  error         // Wait's result; read only after done
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Procs starts child processes and kills them all at the end. Each child is
// its own process group (so Ctrl-C reaches only this program, which then
// kills them in order) and gets SIGKILL if this program dies first.
type Procs struct {
	dir    string
	onExit func(error) // called when a child exits before StopAll

	mu       sync.Mutex
	list     []*Proc
	stopping atomic.Bool
}

func NewProcs(dir string, onExit func(error)) *Procs {
	return &Procs{dir: dir, onExit: onExit}
}

// Start runs bin with args, output to DIR/name.log.
func (ps *Procs) Start(name, bin string, args ...string) (*Proc, error) {
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
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		if !ps.stopping.Load() {
			ps.onExit(fmt.Errorf("%s (pid %d) exited during the run: %v", name, p.Pid(), p.err))
		}
	}()
	return p, nil
}

// StopAll kills every child (and its process group) with SIGKILL, newest
// first, and reaps it. Nothing they hold is worth a graceful stop: the data
// goes with the temp dir.
func (ps *Procs) StopAll() {
	ps.stopping.Store(true)
	ps.mu.Lock()
	list := append([]*Proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		p := list[i]
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		_ = p.Cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(os.Stderr, "%s (pid %d) not reaped 5s after SIGKILL\n", p.Name, p.Pid())
		}
	}
}

// PrintTails writes the end of every child's log to w.
func (ps *Procs) PrintTails(w io.Writer) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.list {
		fmt.Fprintf(w, "---- tail of %s (%s)\n%s\n", p.Name, p.Log, Tail(p.Log, 3000))
	}
}

// Tail returns about the last n bytes of the file at path, from a line start.
func Tail(path string, n int64) string {
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
