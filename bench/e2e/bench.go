package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
	"github.com/procfleet/procfleet/deploy/install"
)

// side is one way of getting the host's metrics into VictoriaMetrics.
type side struct {
	label    string // "A" or "B"
	setup    string // what runs there, for the report
	instance string // instance label of its samples
	vm       *vmServer
	proxy    *benchproc.Proxy
	agents   []*benchproc.Proc // the processes whose cost is measured
	prober   *prober
}

// bench is one run: both sides, their VictoriaMetrics and proxies.
type bench struct {
	o       options
	dir     string
	bins    binaries
	ps      *benchproc.Procs
	a, b    *side
	floor   *floor    // VictoriaMetrics' own freshness, see floor
	started time.Time // when the agents were started; warm-up counts from here
	pprofAt string    // the agent's --pprof-listen address
	agentAt string    // the agent's --listen address (/metrics)
	off     *offAgent // the agent without a redelivery window, with -window-cost
	neAt    string    // node_exporter's address
	vaAt    string    // vmagent's HTTP address
}

func (b *bench) sides() []*side { return []*side{b.a, b.b} }

// run does one whole run and returns its report. Every child process is
// killed and the temp dir removed (unless -keep) before it returns; on an
// error the tails of the children's logs go to stderr first.
func run(ctx context.Context, o options) (rep *Report, err error) {
	bins, err := findBinaries(o.bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "procfleet-bench-e2e-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the temp dir: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ps := benchproc.NewProcs(dir, cancel)
	b := &bench{o: o, dir: dir, bins: bins, ps: ps,
		a: &side{label: "A", setup: "procfleet agent (default config)", instance: "bench-a"},
		b: &side{label: "B", setup: "node_exporter (default collectors) scraped every 1s by vmagent", instance: "bench-b"},
	}
	defer func() {
		ps.StopAll()
		b.stopSink()
		if err != nil && !errors.Is(err, context.Canceled) {
			ps.PrintTails(os.Stderr)
		}
		if o.keep {
			logf("kept %s", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil {
			logf("cannot remove %s: %v", dir, rerr)
		}
	}()
	stopSleepers, err := topUp(o.hostProcs)
	defer stopSleepers()
	if err != nil {
		return nil, err
	}
	machine := readMachine()
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	w, err := b.measure(ctx)
	if err != nil {
		return nil, err
	}
	machine.LoadAvgEnd = loadavg()
	machine.ProcessesEnd = countProcesses()
	return buildReport(o, machine, readVersions(bins), w), nil
}

// start starts the three VictoriaMetrics (one per side and the floor's),
// the proxies in front of the sides', then both sides together, and waits
// until each side's data arrives.
func (b *bench) start(ctx context.Context) error {
	for _, s := range b.sides() {
		vm, err := b.startVM(s.instance)
		if err != nil {
			return err
		}
		s.vm = vm
	}
	vm, err := b.startVM("floor")
	if err != nil {
		return err
	}
	b.floor = &floor{vm: vm}
	if err := waitOK(ctx, "VictoriaMetrics of the floor", vm.addr, "/health", time.Minute); err != nil {
		return err
	}
	// From now on, so that its series exists well before the window, as
	// the sides' probed series do.
	go b.floor.run(ctx)
	for _, s := range b.sides() {
		if err := waitOK(ctx, "VictoriaMetrics of side "+s.label, s.vm.addr, "/health", time.Minute); err != nil {
			return err
		}
		p, err := benchproc.NewProxy(s.vm.addr)
		if err != nil {
			return fmt.Errorf("cannot start the proxy of side %s: %w", s.label, err)
		}
		s.proxy = p
		go p.Serve(ctx)
	}
	if err := b.startAgents(); err != nil {
		return err
	}
	logf("started; VictoriaMetrics A %s (proxy %s), B %s (proxy %s); logs in %s",
		b.a.vm.addr, b.a.proxy.Addr(), b.b.vm.addr, b.b.proxy.Addr(), b.dir)
	return b.waitReady(ctx)
}

// startVM starts a VictoriaMetrics single-node with the flags every one
// in the run shares, its data under the run's dir by name.
func (b *bench) startVM(name string) (*vmServer, error) {
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := b.ps.Start("victoria-metrics-"+name, b.bins.victoriaMetrics,
		"-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(b.dir, "vm-"+name),
		"-search.latencyOffset=0s",
		"-loggerLevel=WARN")
	if err != nil {
		return nil, err
	}
	return &vmServer{addr: addr, proc: p}, nil
}

// startAgents starts node_exporter, vmagent and the procfleet agent one
// right after the other.
func (b *bench) startAgents() error {
	neAddr, err1 := benchproc.FreeAddr()
	vaAddr, err2 := benchproc.FreeAddr()
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot find free ports: %v %v", err1, err2)
	}
	b.neAt, b.vaAt = neAddr, vaAddr
	scrape := filepath.Join(b.dir, "scrape.yaml")
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["%s"]
        labels: {instance: %s}
`, neAddr, b.b.instance)
	if err := os.WriteFile(scrape, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("cannot write the scrape config: %w", err)
	}
	b.started = time.Now()
	ne, err := b.ps.Start("node_exporter", b.bins.nodeExporter, "--web.listen-address="+neAddr)
	if err != nil {
		return err
	}
	va, err := b.ps.Start("vmagent", b.bins.vmagent,
		"-httpListenAddr="+vaAddr,
		"-promscrape.config="+scrape,
		"-remoteWrite.url=http://"+b.b.proxy.Addr()+"/api/v1/write",
		"-remoteWrite.tmpDataPath="+filepath.Join(b.dir, "vmagent-queue"))
	if err != nil {
		return err
	}
	args := []string{"agent",
		"--upstream", "http://" + b.a.proxy.Addr() + "/api/v1/import/prometheus",
		"--listen", "127.0.0.1:0",
		"--hostname", b.a.instance}
	if b.o.profile != "" {
		// pprof is off by default in the agent, and on it keeps the heap
		// profiler's pages: only a run that takes a profile serves it.
		args = append(args, "--pprof-listen", "127.0.0.1:0")
	}
	exe, err := ownCopy(b.dir, "procfleet", b.bins.procfleet)
	if err != nil {
		return err
	}
	ag, err := b.ps.Start("procfleet", exe, args...)
	if err != nil {
		return err
	}
	b.a.agents = []*benchproc.Proc{ag}
	b.b.agents = []*benchproc.Proc{ne, va}
	if b.o.windowCost {
		return b.startOffAgent()
	}
	return nil
}

// ownCopy copies the executable at src to dir/name as the installer
// writes a binary (install.WriteFileAtomic) and returns its path. Each
// agent runs from a copy of its own, as on a host of its own: agents run
// from one file share its pages in the page cache, which each one's
// start-up release drops only where no other maps them, and pages not yet
// written back are not dropped at all (docs/performance.md).
func ownCopy(dir, name, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("cannot copy the agent's executable: %w", err)
	}
	defer in.Close()
	dst := filepath.Join(dir, name)
	if err := install.WriteFileAtomic(dst, 0o755, in); err != nil {
		return "", fmt.Errorf("cannot copy the agent's executable: %w", err)
	}
	return dst, nil
}

// waitReady waits until the agent says where it listens, node_exporter and
// vmagent answer, and each VictoriaMetrics has taken rows.
func (b *bench) waitReady(ctx context.Context) error {
	addr, err := waitLogMatch(ctx, b.a.agents[0], agentStarted, 30*time.Second)
	if err != nil {
		return err
	}
	if b.o.profile != "" {
		if b.pprofAt, err = waitLogMatch(ctx, b.a.agents[0], agentPprof, time.Second); err != nil {
			return err
		}
	}
	b.agentAt = addr
	if b.off != nil {
		if b.off.addr, err = waitLogMatch(ctx, b.off.proc, agentStarted, 30*time.Second); err != nil {
			return err
		}
	}
	for _, c := range []struct{ what, addr, path string }{
		{"the agent", addr, "/healthz"},
		{"node_exporter", b.neAt, "/metrics"},
		{"vmagent", b.vaAt, "/health"},
	} {
		if err := waitOK(ctx, c.what, c.addr, c.path, 30*time.Second); err != nil {
			return err
		}
	}
	for _, s := range b.sides() {
		deadline := time.Now().Add(max(time.Minute, b.o.warmup))
		for {
			rows, err := s.vm.rowsInserted(ctx)
			if err == nil && rows > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("side %s: no rows in its VictoriaMetrics %s after the start (%v)", s.label, time.Since(b.started).Round(time.Second), err)
			}
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	logf("both sides writing %s after the start", time.Since(b.started).Round(time.Millisecond))
	return nil
}

// agentStarted matches the agent's start-up log line (text format) and
// captures its listen address, which --listen 127.0.0.1:0 leaves to the
// kernel.
var agentStarted = regexp.MustCompile(`msg="agent started".* listen=(\S+)`)

// agentPprof captures the pprof address from the same line.
var agentPprof = regexp.MustCompile(`msg="agent started".* pprof=(\S+)`)

// waitLogMatch polls p's log until re matches and returns the first group.
func waitLogMatch(ctx context.Context, p *benchproc.Proc, re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			return "", err
		}
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no line matching %s in its log within %s", p.Name, re, timeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return "", err
		}
	}
}
