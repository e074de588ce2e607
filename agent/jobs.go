package agent

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/hostgen"
	"github.com/procfleet/procfleet/agent/procgen"
	"github.com/procfleet/procfleet/agent/sched"
	"github.com/procfleet/procfleet/agent/selfmon"
	"github.com/procfleet/procfleet/config"
)

// Generators builds the enabled generators of cfg except self, in a fixed
// order. The scan command and the agent share it.
func Generators(cfg config.Agent) ([]emit.Generator, error) {
	o := hostgen.Options{ProcRoot: cfg.ProcfsRoot, SysRoot: cfg.SysfsRoot}
	build := map[string]func() emit.Generator{
		"stat":       func() emit.Generator { return hostgen.NewStat(o) },
		"meminfo":    func() emit.Generator { return hostgen.NewMeminfo(o) },
		"loadavg":    func() emit.Generator { return hostgen.NewLoadavg(o) },
		"vmstat":     func() emit.Generator { return hostgen.NewVmstat(o) },
		"netdev":     func() emit.Generator { return hostgen.NewNetdev(o) },
		"netstat":    func() emit.Generator { return hostgen.NewNetstat(o) },
		"diskstats":  func() emit.Generator { return hostgen.NewDiskstats(o) },
		"sockstat":   func() emit.Generator { return hostgen.NewSockstat(o) },
		"filefd":     func() emit.Generator { return hostgen.NewFilefd(o) },
		"pressure":   func() emit.Generator { return hostgen.NewPressure(o) },
		"interrupts": func() emit.Generator { return hostgen.NewInterrupts(o) },
		"softirqs":   func() emit.Generator { return hostgen.NewSoftirqs(o) },
	}
	var out []emit.Generator
	for _, n := range cfg.Generators.List() {
		if !n.Enabled || n.Name == "self" {
			continue
		}
		b, ok := build[n.Name]
		if !ok {
			return nil, fmt.Errorf("generators.%s: no such generator", n.Name)
		}
		out = append(out, b())
	}
	if p := cfg.Generators.Process; p.Enabled {
		opts := procgen.Options{ProcRoot: cfg.ProcfsRoot, Threads: p.Threads, CmdlineMaxBytes: p.CmdlineMaxBytes}
		if err := opts.Validate(); err != nil {
			return nil, fmt.Errorf("generators.process: %w", err)
		}
		out = append(out, procgen.New(opts))
	}
	return out, nil
}

func (a *Agent) jobs(cfg config.Agent) ([]sched.Job, error) {
	gens, err := Generators(cfg)
	if err != nil {
		return nil, err
	}
	interval := map[string]config.Duration{"process": cfg.Generators.Process.Interval}
	for _, n := range cfg.Generators.List() {
		interval[n.Name] = n.Interval
	}
	var jobs []sched.Job
	for _, g := range gens {
		if p, ok := g.(*procgen.Generator); ok {
			g = countSkips(p, a.sets["generator"])
		}
		jobs = append(jobs, sched.Job{Gen: g, Interval: interval[g.Name()].D(), FullEvery: cfg.FullEvery})
	}
	if s := cfg.Generators.Self; s.Enabled {
		sets := make([]*metrics.Set, 0, len(a.sets))
		for _, set := range a.sets {
			sets = append(sets, set)
		}
		jobs = append(jobs, sched.Job{Gen: selfmon.NewGenerator(sets...), Interval: s.Interval.D(), FullEvery: 1})
	}
	return jobs, nil
}

// skipCounter is the process generator with its schedstat gate's savings
// counted: procfleet_generator_reads_skipped_total{generator="process",file="status"|"io"}.
// Close is the generator's own (the scheduler closes it).
type skipCounter struct {
	*procgen.Generator
	status, io         *metrics.Counter
	lastStatus, lastIO uint64
}

func countSkips(g *procgen.Generator, set *metrics.Set) *skipCounter {
	return &skipCounter{
		Generator: g,
		// GetOrCreate: the generator is rebuilt on a config change and
		// its counts carry on.
		status: set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="status"}`),
		io:     set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="io"}`),
	}
}

func (c *skipCounter) Collect(s *emit.Scan) error {
	err := c.Generator.Collect(s)
	st, io := c.SkippedReads()
	c.status.Add(int(st - c.lastStatus))
	c.io.Add(int(io - c.lastIO))
	c.lastStatus, c.lastIO = st, io
	return err
}
