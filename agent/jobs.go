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
			g = countProcess(p, a.sets["generator"])
		}
		jobs = append(jobs, sched.Job{Gen: g, Interval: interval[g.Name()].D(), FullEvery: cfg.FullEvery})
	}
	if s := cfg.Generators.Self; s.Enabled {
		jobs = append(jobs, sched.Job{Gen: selfmon.NewGenerator(a.orderedSets()...), Interval: s.Interval.D(), FullEvery: 1})
	}
	return jobs, nil
}

// processCounts is the process generator with what its shortcuts saved
// counted: procfleet_generator_reads_skipped_total{generator="process",
// file="status"|"io"|"task/status"} (the schedstat gate, of processes and
// of threads) and file="stat" (idle kernel threads, processes and threads
// whose stat could not have changed),
// procfleet_generator_listings_total{generator="process",kind="all"|"new"}
// (scans that listed every process, and those that listed only the PIDs
// allocated since) and
// procfleet_generator_task_listings_total{generator="process",kind="listed"|"saved"}
// (with threads on: task directories listed, and those left unlisted
// because every thread was known). Close is the generator's own (the
// scheduler closes it).
type processCounts struct {
	*procgen.Generator
	status, io, stat, all, fresh      delta
	taskStatus, taskListed, taskSaved delta
}

// delta is a counter fed with the running totals of a count.
type delta struct {
	c    *metrics.Counter
	last uint64
}

func (d *delta) set(total uint64) {
	d.c.Add(int(total - d.last))
	d.last = total
}

func countProcess(g *procgen.Generator, set *metrics.Set) *processCounts {
	// GetOrCreate: the generator is rebuilt on a config change and its
	// counts carry on.
	return &processCounts{
		Generator:  g,
		status:     delta{c: set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="status"}`)},
		io:         delta{c: set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="io"}`)},
		stat:       delta{c: set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="stat"}`)},
		all:        delta{c: set.GetOrCreateCounter(`procfleet_generator_listings_total{generator="process",kind="all"}`)},
		fresh:      delta{c: set.GetOrCreateCounter(`procfleet_generator_listings_total{generator="process",kind="new"}`)},
		taskStatus: delta{c: set.GetOrCreateCounter(`procfleet_generator_reads_skipped_total{generator="process",file="task/status"}`)},
		taskListed: delta{c: set.GetOrCreateCounter(`procfleet_generator_task_listings_total{generator="process",kind="listed"}`)},
		taskSaved:  delta{c: set.GetOrCreateCounter(`procfleet_generator_task_listings_total{generator="process",kind="saved"}`)},
	}
}

func (c *processCounts) Collect(s *emit.Scan) error {
	err := c.Generator.Collect(s)
	st, io := c.SkippedReads()
	all, fresh := c.Listings()
	c.status.set(st)
	c.io.set(io)
	c.stat.set(c.SkippedStats())
	c.all.set(all)
	c.fresh.set(fresh)
	taskStatus, _, listed, saved := c.ThreadCounts()
	c.taskStatus.set(taskStatus)
	c.taskListed.set(listed)
	c.taskSaved.set(saved)
	return err
}
