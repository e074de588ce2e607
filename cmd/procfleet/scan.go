package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/agent"
	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
)

func newScanCmd() *cobra.Command {
	var procRoot, sysRoot, hostname, cfgFile, job string
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Run one full scan of every enabled generator and print Prometheus text",
		Long: `scan runs every enabled generator once and prints what it read in the
Prometheus text format, sorted, with the instance and job labels the agent
adds and without timestamps. Generators that fail print what they could read
and report the error on stderr; the exit code is 0 unless nothing could run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.DefaultAgent()
			if cfgFile != "" {
				var err error
				if cfg, err = config.LoadAgentFile(cfgFile); err != nil {
					return usageError{err}
				}
			}
			f := cmd.Flags()
			if f.Changed("procfs-root") || cfg.ProcfsRoot == "" {
				cfg.ProcfsRoot = procRoot
			}
			if f.Changed("sysfs-root") || cfg.SysfsRoot == "" {
				cfg.SysfsRoot = sysRoot
			}
			if f.Changed("hostname") {
				cfg.Hostname = hostname
			}
			if f.Changed("job") {
				cfg.Job = job
			}
			if cfg.Hostname == "" {
				cfg.Hostname, _ = os.Hostname()
			}
			out, err := scan(cfg)
			_, werr := os.Stdout.Write(out)
			if werr != nil {
				return werr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&procRoot, "procfs-root", "/proc", "procfs mount point")
	f.StringVar(&sysRoot, "sysfs-root", "/sys", "sysfs mount point")
	f.StringVar(&hostname, "hostname", "", "instance label (default: the host name)")
	f.StringVar(&job, "job", "procfleet", "job label")
	f.StringVar(&cfgFile, "config", "", "agent config file, for its generators section")
	return cmd
}

// scan runs every enabled generator once and returns sorted lines.
// Generator errors are printed to stderr; only a failure of every
// generator is returned.
func scan(cfg config.Agent) ([]byte, error) {
	gens, err := agent.Generators(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, g := range gens {
			if c, ok := g.(io.Closer); ok {
				_ = c.Close() // descriptors kept open for the next scan, which there is not
			}
		}
	}()
	var lines [][]byte
	failed := 0
	for _, g := range gens {
		out, err := emit.Collect(g)
		if err != nil {
			fmt.Fprintf(os.Stderr, "procfleet: scan: generator %s: %v\n", g.Name(), err)
		}
		if err != nil || len(out) == 0 {
			failed++
		}
		for _, l := range bytes.Split(out, []byte{'\n'}) {
			if len(l) > 0 {
				lines = append(lines, withLabels(l, cfg.Hostname, cfg.Job))
			}
		}
	}
	slices.SortFunc(lines, bytes.Compare)
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	if failed == len(gens) && failed > 0 {
		return b.Bytes(), fmt.Errorf("scan: every generator failed or read nothing (is %s a procfs?)", cfg.ProcfsRoot)
	}
	return b.Bytes(), nil
}

// withLabels adds instance and job to one line "name{labels} value".
func withLabels(line []byte, instance, job string) []byte {
	extra := emit.AppendEscaped([]byte(`instance="`), instance)
	extra = append(extra, `",job="`...)
	extra = emit.AppendEscaped(extra, job)
	extra = append(extra, '"')
	i := bytes.IndexAny(line, "{ ")
	if i < 0 {
		return line
	}
	out := make([]byte, 0, len(line)+len(extra)+3)
	out = append(out, line[:i]...)
	if line[i] == '{' {
		out = append(out, '{')
		out = append(out, extra...)
		if line[i+1] != '}' {
			out = append(out, ',')
		}
		return append(out, line[i+1:]...)
	}
	out = append(out, '{')
	out = append(out, extra...)
	out = append(out, '}')
	return append(out, line[i:]...)
}
