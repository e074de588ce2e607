package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// etcdNode is one etcd server process of the three-node cluster; its
// ports and data directory survive a kill, so that restart brings the same
// member back.
type etcdNode struct {
	name      string
	dir       string
	client    int // client port on 127.0.0.1; /metrics and /health too
	peer      int
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
	cpuOffset float64 // CPU seconds of earlier incarnations, so that cpu() only grows
	lastCPU   float64
	logPath   string
}

// etcdCluster is three etcd server processes on loopback.
type etcdCluster struct {
	bin   string
	nice  int    // the processes' nice value (see -etcd-nice)
	cpus  string // the CPUs they run on (see -etcd-cpus); "": as the simulator
	nodes []*etcdNode
}

// startEtcd starts three etcd processes from bin, data under dir, client
// ports base, base+1, base+2 and peer ports base+10.., and waits until
// they serve. A nice value other than 0 starts them through nice(1).
func startEtcd(bin, dir string, base, nice int, cpus string) (*etcdCluster, error) {
	c := &etcdCluster{bin: bin, nice: nice, cpus: cpus}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make etcd's directory: %w", err)
	}
	var initial []string
	for i := range 3 {
		n := &etcdNode{name: fmt.Sprintf("etcd%d", i), dir: filepath.Join(dir, fmt.Sprintf("etcd%d", i)), client: base + i, peer: base + 10 + i}
		c.nodes = append(c.nodes, n)
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", n.name, n.peer))
	}
	for _, n := range c.nodes {
		n.args = []string{
			"--name", n.name, "--data-dir", n.dir,
			"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", n.client),
			"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", n.client),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", n.peer),
			"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", n.peer),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "procfleet-fleet",
			"--quota-backend-bytes", strconv.Itoa(8 << 30), "--log-level", "warn",
		}
		n.logPath = filepath.Join(dir, n.name+".log")
		if err := n.start(bin, nice, cpus); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitHealthy(30 * time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (n *etcdNode) start(bin string, nice int, cpus string) error {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create the log of %s: %w", n.name, err)
	}
	defer f.Close()
	cmd := exec.Command(bin, n.args...)
	if nice != 0 {
		// nice(1) execs etcd in its own process: the PID stays etcd's.
		cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), bin}, n.args...)...)
	}
	if cpus != "" {
		// taskset(1) execs too; etcd's affinity no longer follows the
		// simulator's (a simulator pinned to one CPU to starve it).
		cmd = exec.Command("taskset", append([]string{"-c", cpus}, cmd.Args...)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s (%s): %w", n.name, bin, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(n.done)
	}()
	return nil
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (n *etcdNode) kill() {
	if n.cmd == nil {
		return
	}
	n.cpuOffset = n.cpu()
	_ = n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

func (n *etcdNode) endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", n.client) }

// cpu is the CPU seconds (user and system) of the node's processes so far.
func (n *etcdNode) cpu() float64 {
	if n.cmd == nil {
		return n.cpuOffset
	}
	cpu, _, err := procStat(n.cmd.Process.Pid)
	if err != nil {
		return n.lastCPU
	}
	n.lastCPU = n.cpuOffset + cpu
	return n.lastCPU
}

// rss is the node's resident memory in bytes, 0 while it is down.
func (n *etcdNode) rss() int64 {
	if n.cmd == nil {
		return 0
	}
	_, rss, _ := procStat(n.cmd.Process.Pid)
	return rss
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.endpoint())
	}
	return out
}

func (c *etcdCluster) stop() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// waitHealthy waits until every running node answers /health with true.
func (c *etcdCluster) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		for {
			if healthy(n.endpoint()) {
				break
			}
			select {
			case <-n.done:
				return fmt.Errorf("%s exited while starting; its log: %s", n.name, n.logPath)
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not healthy within %s; its log: %s", n.name, timeout, n.logPath)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func healthy(endpoint string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux platform Go supports).
const clockTicks = 100

// procStat reads the CPU seconds (utime+stime) and RSS bytes of pid.
func procStat(pid int) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the stat of process %d: %w", pid, err)
	}
	s := string(b)
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields after the name; want 22 or more", pid, len(f))
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return (utime + stime) / clockTicks, pages * int64(os.Getpagesize()), nil
}

// metrics reads a node's /metrics: every sample summed by metric name,
// and grpc_server_msg_received_total also by method, as
// "grpc_server_msg_received_total/<method>".
func metrics(endpoint string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s/metrics: %w", endpoint, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		name := series
		if b := strings.IndexByte(series, '{'); b >= 0 {
			name = series[:b]
		}
		out[name] += v
		if name == "grpc_server_msg_received_total" {
			if m := label(series, "grpc_method"); m != "" {
				out[name+"/"+m] += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s/metrics: %w", endpoint, err)
	}
	return out, nil
}

// label returns the value of label name in a series such as
// a{b="c",name="v"}, "" when absent.
func label(series, name string) string {
	i := strings.Index(series, name+`="`)
	if i < 0 {
		return ""
	}
	rest := series[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// sample is the etcd cluster's counters at one moment.
type sample struct {
	at      time.Time
	cpu     float64 // seconds, all nodes
	metrics map[string]float64
}

// sample reads every running node's CPU and metrics, summed.
func (c *etcdCluster) sample() sample {
	s := sample{at: time.Now(), metrics: map[string]float64{}}
	for _, n := range c.nodes {
		s.cpu += n.cpu()
		if n.cmd == nil {
			continue
		}
		m, err := metrics(n.endpoint())
		if err != nil {
			continue
		}
		for k, v := range m {
			s.metrics[k] += v
		}
	}
	return s
}
