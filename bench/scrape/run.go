package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/procfleet/procfleet/bench/internal/benchproc"
)

// side is one scraper and the VictoriaMetrics it writes to.
type side struct {
	name  string
	proc  *benchproc.Proc
	vm    string // VictoriaMetrics' host:port
	proxy *benchproc.Proxy
	scr   func() int64 // scrapes answered to it so far
}

// snap is one side's counters at one moment.
type snap struct {
	cpu     float64
	scrapes int64
	wire    int64
	rows    float64
}

func (s *side) snap(ctx context.Context) (snap, error) {
	cpu, err := cpuSeconds(s.proc.Pid())
	if err != nil {
		return snap{}, err
	}
	up, _ := s.proxy.Counters()
	rows, err := rowsInserted(ctx, s.vm)
	if err != nil {
		return snap{}, err
	}
	return snap{cpu: cpu, scrapes: s.scr(), wire: up, rows: rows}, nil
}

func run(ctx context.Context, o options) (*report, error) {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "procfleet-bench-scrape-")
		if err != nil {
			return nil, fmt.Errorf("cannot make a temporary directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ps := benchproc.NewProcs(dir, func(err error) { cancel(err) })
	defer ps.StopAll()
	fail := func(err error) (*report, error) {
		ps.PrintTails(os.Stderr)
		if c := context.Cause(ctx); c != nil && c != err {
			return nil, fmt.Errorf("%w (%v)", err, c)
		}
		return nil, err
	}

	tg, err := startTargets(ctx, o.targets, o.series)
	if err != nil {
		return nil, err
	}
	logf("serving %d targets × %d series", o.targets, o.series)
	var quoted []string
	for _, a := range tg.addrs() {
		quoted = append(quoted, "'"+a+"'")
	}
	targetList := "[" + strings.Join(quoted, ", ") + "]"

	sides := map[string]*side{}
	for _, name := range []string{"procfleet", "vmagent"} {
		addr, err := benchproc.FreeAddr()
		if err != nil {
			return nil, err
		}
		p, err := ps.Start("vm-"+name, filepath.Join(o.bin, "victoria-metrics"), "-httpListenAddr="+addr,
			"-storageDataPath="+filepath.Join(dir, "vm-"+name), "-search.latencyOffset=0s", "-loggerLevel=WARN")
		if err != nil {
			return fail(err)
		}
		_ = p
		if err := waitOK(ctx, addr, "/health", 30*time.Second); err != nil {
			return fail(fmt.Errorf("VictoriaMetrics for %s: %w", name, err))
		}
		px, err := benchproc.NewProxy(addr)
		if err != nil {
			return fail(fmt.Errorf("cannot start the proxy in front of VictoriaMetrics for %s: %w", name, err))
		}
		go px.Serve(ctx)
		sides[name] = &side{name: name, vm: addr, proxy: px}
	}
	sides["procfleet"].scr = tg.procfleet.Load
	sides["vmagent"].scr = tg.vmagent.Load

	// procfleet: embedded etcd, the cluster document, one agent.
	etcdAddr, err := benchproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	e, err := startEtcd(etcdAddr, dir)
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	gens := ""
	for _, g := range []string{"stat", "meminfo", "loadavg", "vmstat", "netdev", "netstat", "diskstats", "sockstat",
		"filefd", "pressure", "interrupts", "softirqs", "process", "self"} {
		gens += fmt.Sprintf("    %s: {enabled: false}\n", g)
	}
	upstream := fmt.Sprintf(`{name: vm, url: "http://%s/api/v1/import/prometheus", capacity: 1GiB/s}`, sides["procfleet"].proxy.Addr())
	if o.protocol == "remote_write" {
		upstream = fmt.Sprintf(`{name: vm, url: "http://%s/api/v1/write", capacity: 1GiB/s, protocol: remote_write}`, sides["procfleet"].proxy.Addr())
	}
	agentExtra := ""
	for e := range strings.SplitSeq(o.agent, ";") {
		if e = strings.TrimSpace(e); e != "" {
			agentExtra += "  " + e + "\n"
		}
	}
	clusterDoc := fmt.Sprintf(`upstreams:
  - %s
agents:
%s  generators:
%sscrape_configs:
  - job_name: bench
    scrape_interval: %s
    static_configs: [{targets: %s}]
`, upstream, agentExtra, gens, promDuration(o.interval), targetList)
	docPath := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(docPath, []byte(clusterDoc), 0o644); err != nil {
		return fail(fmt.Errorf("cannot write %s: %w", docPath, err))
	}
	pf := filepath.Join(o.bin, "procfleet")
	ep := "--etcd=http://" + etcdAddr
	if out, err := exec.CommandContext(ctx, pf, "cluster", "bootstrap", ep, "--cluster=bench", "--config", docPath).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("procfleet cluster bootstrap: %w: %s", err, out))
	}
	agentAddr, err := benchproc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	pprofAddr, err := benchproc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	// A spool directory as vmagent has its -remoteWrite.tmpDataPath: what
	// the memory queue (ship.queue_bytes) does not hold goes to disk.
	bin, args := pf, []string{"agent", ep, "--cluster=bench", "--node=scraper",
		"--hostname=scraper", "--listen=" + agentAddr, "--gossip-listen=127.0.0.1:0", "--log-level=warn",
		"--pprof-listen=" + pprofAddr, "--spool-dir=" + filepath.Join(dir, "procfleet-spool")}
	if o.gogc != "" {
		// env(1) execs procfleet in its own process: the pid measured is
		// procfleet's.
		bin, args = "/usr/bin/env", append([]string{"GOGC=" + o.gogc, pf}, args...)
	}
	if sides["procfleet"].proc, err = ps.Start("procfleet", bin, args...); err != nil {
		return fail(err)
	}

	// vmagent: the same targets from its -promscrape.config.
	promPath := filepath.Join(dir, "vmagent-scrape.yaml")
	prom := fmt.Sprintf("scrape_configs:\n  - job_name: bench\n    scrape_interval: %s\n    static_configs: [{targets: %s}]\n",
		promDuration(o.interval), targetList)
	if err := os.WriteFile(promPath, []byte(prom), 0o644); err != nil {
		return fail(fmt.Errorf("cannot write %s: %w", promPath, err))
	}
	vmagentAddr, err := benchproc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	if sides["vmagent"].proc, err = ps.Start("vmagent", filepath.Join(o.bin, "vmagent"), "-promscrape.config="+promPath,
		"-remoteWrite.url=http://"+sides["vmagent"].proxy.Addr()+"/api/v1/write",
		"-remoteWrite.tmpDataPath="+filepath.Join(dir, "vmagent-data"), "-httpListenAddr="+vmagentAddr, "-loggerLevel=WARN"); err != nil {
		return fail(err)
	}

	logf("both scrapers started; warm-up %s, then %s measured", o.warmup, o.duration)
	if err := sleep(ctx, o.warmup); err != nil {
		return fail(fmt.Errorf("during the warm-up: %w", context.Cause(ctx)))
	}
	order := []*side{sides["procfleet"], sides["vmagent"]}
	var before, after [2]snap
	peaks := [2]*rssPeak{}
	mctx, mcancel := context.WithCancel(ctx)
	for i, s := range order {
		if before[i], err = s.snap(ctx); err != nil {
			mcancel()
			return fail(err)
		}
		peaks[i] = &rssPeak{pid: s.proc.Pid()}
		go peaks[i].run(mctx, 250*time.Millisecond)
	}
	profDone := make(chan error, 1)
	if o.profile != "" {
		go func() { profDone <- saveProfile(ctx, pprofAddr, o.profile, o.duration) }()
	} else {
		profDone <- nil
	}
	start := time.Now()
	err = sleep(ctx, o.duration)
	mcancel()
	if err != nil {
		return fail(fmt.Errorf("during the measured window: %w", context.Cause(ctx)))
	}
	elapsed := time.Since(start)
	rep := &report{Targets: o.targets, SeriesPerTarget: o.series, Interval: o.interval.String(),
		Warmup: o.warmup.String(), Window: elapsed.Round(time.Millisecond).String(),
		ProcfleetAgent: o.agent, ProcfleetGOGC: o.gogc, ProcfleetProtocol: o.protocol}
	for i, s := range order {
		if after[i], err = s.snap(ctx); err != nil {
			return fail(err)
		}
		_, hwm, err := memStatus(s.proc.Pid())
		if err != nil {
			return fail(err)
		}
		rep.Sides = append(rep.Sides, newSideReport(s.name, before[i], after[i], peaks[i].get(), hwm, o, elapsed))
	}
	rep.ratios()
	if err := <-profDone; err != nil {
		return fail(err)
	}
	logf("done")
	return rep, nil
}

// promDuration writes d as Prometheus does ("10s", "1m").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// waitOK polls http://addr/path until it answers 200.
func waitOK(ctx context.Context, addr, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := benchproc.Get(ctx, addr, path)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to %s within %s: %w", path, timeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// rowsInserted is vm_rows_inserted_total, summed over its types, from
// VictoriaMetrics' own /metrics.
func rowsInserted(ctx context.Context, addr string) (float64, error) {
	b, err := benchproc.Get(ctx, addr, "/metrics")
	if err != nil {
		return 0, fmt.Errorf("cannot read VictoriaMetrics' metrics: %w", err)
	}
	var sum float64
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "vm_rows_inserted_total") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, nil
}

// saveProfile writes procfleet's CPU profile over d to dir/cpu.pprof, then
// its heap profile to dir/heap.pprof.
func saveProfile(ctx context.Context, addr, dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make %s: %w", dir, err)
	}
	c := &http.Client{Timeout: d + 30*time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cannot take procfleet's CPU profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cannot take procfleet's CPU profile: %s %v: %.200s", resp.Status, err, b)
	}
	path := filepath.Join(dir, "cpu.pprof")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	logf("procfleet's CPU profile of the window: %s", path)
	b, err = benchproc.Get(ctx, addr, "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("cannot take procfleet's heap profile: %w", err)
	}
	path = filepath.Join(dir, "heap.pprof")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	logf("procfleet's heap profile at the end of the window: %s", path)
	return nil
}
