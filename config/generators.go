package config

import (
	"fmt"
	"time"
)

// MinInterval is the shortest generator interval accepted.
const MinInterval = 100 * time.Millisecond

// Generator enables one /proc source and sets its interval.
type Generator struct {
	// Enabled turns the generator on. Default true.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two scans, 100ms to 1h. Default 1s.
	Interval Duration `yaml:"interval"`
}

// ProcessGenerator configures the per-process generator.
type ProcessGenerator struct {
	// Enabled turns the generator on. Default true.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between two scans, 100ms to 1h. Default 1s.
	Interval Duration `yaml:"interval"`
	// Threads adds per-thread series from /proc/PID/task/TID. Default false.
	Threads bool `yaml:"threads"`
	// CmdlineMaxBytes caps the cmdline label of proc_pid_info. Default 256.
	CmdlineMaxBytes int `yaml:"cmdline_max_bytes"`
}

// Generators lists every generator. The YAML keys are the generator names.
type Generators struct {
	Stat       Generator        `yaml:"stat"`
	Meminfo    Generator        `yaml:"meminfo"`
	Loadavg    Generator        `yaml:"loadavg"`
	Vmstat     Generator        `yaml:"vmstat"`
	Netdev     Generator        `yaml:"netdev"`
	Netstat    Generator        `yaml:"netstat"`
	Diskstats  Generator        `yaml:"diskstats"`
	Sockstat   Generator        `yaml:"sockstat"`
	Filefd     Generator        `yaml:"filefd"`
	Pressure   Generator        `yaml:"pressure"`
	Interrupts Generator        `yaml:"interrupts"`
	Softirqs   Generator        `yaml:"softirqs"`
	Process    ProcessGenerator `yaml:"process"`
	// Self writes the agent's own metrics into the pipeline. Default
	// interval 10s.
	Self Generator `yaml:"self"`
}

// DefaultGenerators returns every generator enabled at 1s, self at 10s.
func DefaultGenerators() Generators {
	on := Generator{Enabled: true, Interval: Duration(time.Second)}
	return Generators{
		Stat: on, Meminfo: on, Loadavg: on, Vmstat: on, Netdev: on, Netstat: on,
		Diskstats: on, Sockstat: on, Filefd: on, Pressure: on, Interrupts: on, Softirqs: on,
		Process: ProcessGenerator{Enabled: true, Interval: Duration(time.Second), CmdlineMaxBytes: 256},
		Self:    Generator{Enabled: true, Interval: Duration(10 * time.Second)},
	}
}

// Named pairs a generator's name with its settings.
type Named struct {
	Name string
	Generator
}

// List returns the host generators (all but process) with their names, in a
// fixed order.
func (g Generators) List() []Named {
	return []Named{
		{"stat", g.Stat}, {"meminfo", g.Meminfo}, {"loadavg", g.Loadavg}, {"vmstat", g.Vmstat},
		{"netdev", g.Netdev}, {"netstat", g.Netstat}, {"diskstats", g.Diskstats},
		{"sockstat", g.Sockstat}, {"filefd", g.Filefd}, {"pressure", g.Pressure},
		{"interrupts", g.Interrupts}, {"softirqs", g.Softirqs}, {"self", g.Self},
	}
}

// Validate checks every generator's settings.
func (g Generators) Validate(key string) error {
	all := append(g.List(), Named{"process", Generator{Enabled: g.Process.Enabled, Interval: g.Process.Interval}})
	for _, n := range all {
		if err := validateInterval(key+"."+n.Name+".interval", n.Interval); err != nil {
			return err
		}
	}
	if g.Process.CmdlineMaxBytes < 0 || g.Process.CmdlineMaxBytes > 64<<10 {
		return fmt.Errorf("%s.process.cmdline_max_bytes: %d is not accepted; want 0 to 65536", key, g.Process.CmdlineMaxBytes)
	}
	return nil
}

func validateInterval(key string, d Duration) error {
	if d.D() < MinInterval || d.D() > time.Hour {
		return fmt.Errorf("%s: %s is not accepted; want %s to 1h", key, d, MinInterval)
	}
	return nil
}
