// Package selfmon exposes the agent's own metrics: the process's CPU and
// memory, and a generator that writes every component's metrics set into
// the pipeline, so that a fleet's agents are monitored where their data goes.
package selfmon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/agent/procfile"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for userspace.
const clockTicks = 100

// RegisterProcess adds procfleet_process_cpu_seconds_total and
// procfleet_process_resident_memory_bytes to set, read from procRoot/self/stat
// each time the set is written.
func RegisterProcess(set *metrics.Set, procRoot string) {
	path := procRoot + "/self/stat"
	read := func() (utime, stime, rss uint64, ok bool) {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, 0, 0, false
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			return 0, 0, 0, false
		}
		f := bytes.Fields(data[i+1:])
		// After comm: state(0) ppid(1) ... utime(11) stime(12) ... rss(21).
		if len(f) < 22 {
			return 0, 0, 0, false
		}
		u, err1 := procfile.ParseUint(f[11])
		s, err2 := procfile.ParseUint(f[12])
		r, err3 := procfile.ParseUint(f[21])
		return u, s, r, err1 == nil && err2 == nil && err3 == nil
	}
	set.NewGauge(`procfleet_process_cpu_seconds_total`, func() float64 {
		u, s, _, _ := read()
		return float64(u+s) / clockTicks
	})
	pageSize := float64(os.Getpagesize())
	set.NewGauge(`procfleet_process_resident_memory_bytes`, func() float64 {
		_, _, r, _ := read()
		return float64(r) * pageSize
	})
}

// Generator writes the series of metrics sets into a scan. Its Collect is
// called by one goroutine at a time, as for every generator.
type Generator struct {
	sets []*metrics.Set
	buf  bytes.Buffer
}

// NewGenerator returns a generator named "self" over sets.
func NewGenerator(sets ...*metrics.Set) *Generator { return &Generator{sets: sets} }

// Name implements emit.Generator.
func (g *Generator) Name() string { return "self" }

// Collect implements emit.Generator.
func (g *Generator) Collect(s *emit.Scan) error {
	g.buf.Reset()
	for _, set := range g.sets {
		set.WritePrometheus(&g.buf)
	}
	data := g.buf.Bytes()
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = procfile.NextLine(data)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp <= 0 {
			return fmt.Errorf("self metrics line %d: no value in %q", n, line)
		}
		v, err := strconv.ParseFloat(string(line[sp+1:]), 64)
		if err != nil {
			return fmt.Errorf("self metrics line %d: %w", n, err)
		}
		s.BeginBytes(line[:sp]).Value(v)
	}
	return nil
}
