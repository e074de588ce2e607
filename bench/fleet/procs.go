package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The simulator splits a large fleet over child processes (-procs): one
// process running thousands of members, each with its own etcd client,
// spends its CPU in the Go runtime (tens of thousands of goroutines, a
// heap of gigabytes) rather than in the members, and its late reads of
// etcd's answers become the figures. The parent starts etcd and the
// children; child c runs the members of a consecutive slice of the fleet
// (so that the gossiping members, spread over the fleet, are spread over
// the children) and talks to the parent in JSON lines: commands on its
// stdin, replies and events on its stdout, progress on its stderr.

// childCommand is a command from the parent to a child.
type childCommand struct {
	ID  int    `json:"id"`
	Cmd string `json:"cmd"` // "start", "states", "restart", "stop"
	I   int    `json:"i,omitempty"`
}

// childMessage is a child's reply to a command (ID set) or an event.
type childMessage struct {
	ID int `json:"id,omitempty"`
	// Err is why the command failed.
	Err string `json:"err,omitempty"`
	// States answers "states", in fleet order of the child's slice;
	// Computed and Shared are its ring memo's counts.
	States   []memberState `json:"states,omitempty"`
	Computed int64         `json:"computed,omitempty"`
	Shared   int64         `json:"shared,omitempty"`
	// Event: "applied" (member I took Rev at At for the first time),
	// "registered" (member I's registrations reached Mark.N), "reset"
	// (member I was stopped to be started again: forget what it did).
	Event string    `json:"event,omitempty"`
	I     int       `json:"i,omitempty"`
	Rev   int64     `json:"rev,omitempty"`
	At    time.Time `json:"at,omitzero"`
	Mark  regMark   `json:"mark,omitzero"`
}

// procsFor is the number of processes that simulate a fleet of n: -procs
// when set, else one per membersPerProc members.
func (o options) procsFor(n int) int {
	if o.procs > 0 {
		return min(o.procs, n)
	}
	return max(1, (n+membersPerProc-1)/membersPerProc)
}

// membersPerProc is how many members one process runs by default: about
// what one process ran on this 2-core machine without falling behind its
// own clients (docs/performance.md, "Simulated fleet").
const membersPerProc = 250

// child is one child process as the parent sees it.
type child struct {
	index  int
	first  int // fleet index of its first member
	n      int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	encMu  sync.Mutex
	enc    *json.Encoder
	exited chan struct{}

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan childMessage
}

// procFleet is a fleet run by child processes.
type procFleet struct {
	children []*child
	total    int

	mu         sync.Mutex
	applied    []map[int64]time.Time
	registered [][]regMark
}

// startChildren starts procs child processes of this command that will
// run a fleet of n members against endpoints; their members start with
// start.
func startChildren(o options, endpoints []string, n, procs int) (*procFleet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the simulator's executable to start its children: %w", err)
	}
	pf := &procFleet{total: n, applied: make([]map[int64]time.Time, n), registered: make([][]regMark, n)}
	for i := range n {
		pf.applied[i] = map[int64]time.Time{}
	}
	for c := range procs {
		first, last := c*n/procs, (c+1)*n/procs
		args := []string{"-child",
			"-child-endpoints", strings.Join(endpoints, ","),
			"-child-first", strconv.Itoa(first), "-child-count", strconv.Itoa(last - first),
			"-child-total", strconv.Itoa(n),
			"-gossip", strconv.Itoa(o.gossipers), "-batch", strconv.Itoa(max(1, o.batch/procs)),
			"-share-ring=" + strconv.FormatBool(o.shareRing),
			"-child-mem-limit", strconv.FormatInt(o.memLimit/int64(procs+1), 10),
			"-keepalive-timeout", keepAliveTimeout.String(),
			"-lease-ttl", leaseTTL.String(),
		}
		if o.verbose {
			args = append(args, "-v")
		}
		if o.pprof != "" {
			// Each child serves pprof on the port after the parent's.
			host, port, ok := strings.Cut(o.pprof, ":")
			if p, err := strconv.Atoi(port); ok && err == nil {
				args = append(args, "-pprof", host+":"+strconv.Itoa(p+1+c))
			}
		}
		ch := &child{index: c, first: first, n: last - first, waiting: map[int]chan childMessage{}, exited: make(chan struct{})}
		ch.cmd = exec.Command(exe, args...)
		ch.cmd.Stderr = os.Stderr
		ch.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
			pf.stopAll()
			return nil, err
		}
		out, err := ch.cmd.StdoutPipe()
		if err != nil {
			pf.stopAll()
			return nil, err
		}
		if err := ch.cmd.Start(); err != nil {
			pf.stopAll()
			return nil, fmt.Errorf("cannot start simulator child %d: %w", c, err)
		}
		ch.enc = json.NewEncoder(ch.stdin)
		pf.children = append(pf.children, ch)
		go pf.read(ch, out)
	}
	progress("fleet of %d: %d processes of about %d members", n, procs, n/procs)
	return pf, nil
}

// read takes a child's replies and events until it exits.
func (pf *procFleet) read(ch *child, out io.Reader) {
	defer func() {
		_ = ch.cmd.Wait()
		close(ch.exited)
		ch.mu.Lock()
		for id, w := range ch.waiting {
			w <- childMessage{ID: id, Err: fmt.Sprintf("simulator child %d exited", ch.index)}
			delete(ch.waiting, id)
		}
		ch.mu.Unlock()
	}()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var m childMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			progress("simulator child %d: cannot read %.200q: %v", ch.index, sc.Text(), err)
			continue
		}
		if m.ID != 0 {
			ch.mu.Lock()
			w := ch.waiting[m.ID]
			delete(ch.waiting, m.ID)
			ch.mu.Unlock()
			if w != nil {
				w <- m
			}
			continue
		}
		if m.I < 0 || m.I >= pf.total {
			continue
		}
		pf.mu.Lock()
		switch m.Event {
		case "applied":
			if _, ok := pf.applied[m.I][m.Rev]; !ok {
				pf.applied[m.I][m.Rev] = m.At
			}
		case "registered":
			pf.registered[m.I] = append(pf.registered[m.I], m.Mark)
		case "reset":
			pf.applied[m.I] = map[int64]time.Time{}
			pf.registered[m.I] = nil
		}
		pf.mu.Unlock()
	}
}

// call sends a command to a child and waits for its reply.
func (ch *child) call(c childCommand) (childMessage, error) {
	w := make(chan childMessage, 1)
	ch.mu.Lock()
	ch.nextID++
	c.ID = ch.nextID
	ch.waiting[c.ID] = w
	ch.mu.Unlock()
	ch.encMu.Lock()
	err := ch.enc.Encode(c)
	ch.encMu.Unlock()
	if err != nil {
		ch.mu.Lock()
		delete(ch.waiting, c.ID)
		ch.mu.Unlock()
		return childMessage{}, fmt.Errorf("cannot send %q to simulator child %d: %w", c.Cmd, ch.index, err)
	}
	m := <-w
	if m.Err != "" {
		return m, fmt.Errorf("simulator child %d: %s: %s", ch.index, c.Cmd, m.Err)
	}
	return m, nil
}

// each calls every child at once and returns their replies in order.
func (pf *procFleet) each(c childCommand) ([]childMessage, error) {
	out := make([]childMessage, len(pf.children))
	errs := make([]error, len(pf.children))
	var wg sync.WaitGroup
	for i, ch := range pf.children {
		wg.Go(func() { out[i], errs[i] = ch.call(c) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// start starts every child's members at once, each child batch/procs at
// a time, and waits until the fleet took revision rev.
func (pf *procFleet) start(n, gossipers, batch int, rev int64, timeout time.Duration) (time.Duration, error) {
	begin := time.Now()
	if _, err := pf.each(childCommand{Cmd: "start"}); err != nil {
		return 0, err
	}
	return finishStart(pf, n, rev, begin, timeout)
}

func (pf *procFleet) size() int         { return pf.total }
func (pf *procFleet) node(i int) string { return nodeName(i) }

func (pf *procFleet) appliedAt(i int, rev int64) (time.Time, bool) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return firstApplied(pf.applied[i], rev)
}

func (pf *procFleet) registeredAt(i int, after int) (time.Time, bool) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return firstRegistered(pf.registered[i], after)
}

func (pf *procFleet) states() []memberState {
	replies, err := pf.each(childCommand{Cmd: "states"})
	out := make([]memberState, 0, pf.total)
	for i, r := range replies {
		if len(r.States) != pf.children[i].n {
			// A child that did not answer: its members count as
			// pending with the reason.
			why := "no answer from its simulator process"
			if err != nil {
				why = err.Error()
			}
			r.States = make([]memberState, pf.children[i].n)
			for j := range r.States {
				r.States[j].Pending = why
			}
		}
		out = append(out, r.States...)
	}
	return out
}

func (pf *procFleet) owner(i int) *child {
	for _, ch := range pf.children {
		if i >= ch.first && i < ch.first+ch.n {
			return ch
		}
	}
	return nil
}

func (pf *procFleet) restart(i int) error {
	ch := pf.owner(i)
	if ch == nil {
		return fmt.Errorf("no simulator child runs member %d", i)
	}
	_, err := ch.call(childCommand{Cmd: "restart", I: i})
	return err
}

func (pf *procFleet) pids() []int {
	out := []int{os.Getpid()}
	for _, ch := range pf.children {
		out = append(out, ch.cmd.Process.Pid)
	}
	return out
}

func (pf *procFleet) ringCounts() (computed, shared int64) {
	replies, _ := pf.each(childCommand{Cmd: "states"})
	for _, r := range replies {
		computed += r.Computed
		shared += r.Shared
	}
	return computed, shared
}

// stopAll asks every child to stop its members and exit, and kills those
// that do not within a minute.
func (pf *procFleet) stopAll() {
	var wg sync.WaitGroup
	for _, ch := range pf.children {
		wg.Go(func() {
			done := make(chan struct{})
			go func() {
				_, _ = ch.call(childCommand{Cmd: "stop"})
				close(done)
			}()
			select {
			case <-done:
			case <-ch.exited:
			case <-time.After(time.Minute):
			}
			_ = ch.stdin.Close()
			select {
			case <-ch.exited:
			case <-time.After(10 * time.Second):
				_ = ch.cmd.Process.Kill()
				<-ch.exited
			}
		})
	}
	wg.Wait()
}
