// Command e2e measures, in one run on one machine, what it costs to get this
// host's metrics into VictoriaMetrics every second two ways, side by side:
//
//   - A: `procfleet agent` with its default configuration, pushing to its
//     own VictoriaMetrics;
//   - B: node_exporter with its default collectors, scraped every second by
//     vmagent, which remote-writes to a second VictoriaMetrics.
//
// Both sides start together, a warm-up is discarded, then the same window is
// measured on both: CPU and resident memory of the agent processes, series
// and samples as VictoriaMetrics holds them, bytes on the wire (a counting
// TCP proxy in front of each VictoriaMetrics) and freshness (sample
// timestamp to first queryable). One JSON object goes to stdout; progress and
// a table go to stderr.
//
// It drives the binaries that `make bench-e2e` builds into bin/ and imports
// no procfleet package, so it measures what users run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	duration  time.Duration // measured window
	warmup    time.Duration // discarded time after the start
	bin       string        // directory with the four binaries
	profile   string        // directory for the agent's CPU profile; "" for none
	profSecs  int           // length of that profile
	flush     bool          // force_flush before every freshness poll
	check     bool          // exit 1 when a target is missed
	keep      bool          // keep the temp dir
	hostProcs int           // processes the host is topped up to
	// windowCost runs a second agent without the redelivery window
	windowCost bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measured window, the same for both sides")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "time after the start that is discarded")
	flag.StringVar(&o.bin, "bin", "bin", "directory holding procfleet, victoria-metrics, vmagent and node_exporter")
	flag.StringVar(&o.profile, "profile", "", "directory to write agent.cpu.pprof to, a CPU profile of the agent taken during the window (at most 30s); empty: none")
	flag.IntVar(&o.profSecs, "profile-seconds", 30, "length of the -profile CPU profile in seconds, from the window's start (at most the window)")
	flag.BoolVar(&o.flush, "flush-before-poll", false, "call /internal/force_flush before every freshness poll: takes VictoriaMetrics' own 2-4s search buffer out of freshness, leaving agent plus ingestion delay (costs VictoriaMetrics CPU, not the agents')")
	flag.BoolVar(&o.check, "check", false, "exit 1 when side A misses a target")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (VictoriaMetrics data, configs, logs)")
	flag.BoolVar(&o.windowCost, "window-cost", true, "also run side A's agent with ship.redeliver_window: 0, pushing to a sink in this program, and report what the window costs (redeliver_window in the JSON)")
	flag.IntVar(&o.hostProcs, "host-procs", 300, "before the start, top the host up to this many processes with idle `sleep` children, so that A's per-process series come from a known population (a host with a few hundred processes); 0 leaves the host as it is")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, o)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: cannot write the report:", err)
		os.Exit(1)
	}
	printTable(os.Stderr, rep)
	if o.check && !rep.AllTargetsMet {
		fmt.Fprintln(os.Stderr, "bench-e2e: side A misses a target (-check)")
		os.Exit(1)
	}
}

func (o options) validate() error {
	if o.duration < 2*time.Second {
		return fmt.Errorf("-duration %s: want 2s or more", o.duration)
	}
	if o.warmup < 0 {
		return fmt.Errorf("-warmup %s: want 0 or more", o.warmup)
	}
	if o.hostProcs < 0 || o.hostProcs > 20000 {
		return fmt.Errorf("-host-procs %d: want 0 to 20000", o.hostProcs)
	}
	if o.profSecs < 1 {
		return fmt.Errorf("-profile-seconds %d: want 1 or more", o.profSecs)
	}
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: everything is a flag", flag.Args())
	}
	return nil
}

// logf prints a progress line to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-e2e: "+format+"\n", args...)
}
