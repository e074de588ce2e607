// Command scrape measures procfleet and vmagent v1.151.0 side by side,
// scraping the same targets: one process serves N targets on loopback (one
// HTTP server each, M series per /metrics, values new on every scrape, gzip
// when asked), and both scrapers take every target at the same interval,
// each pushing to its own VictoriaMetrics through a counting TCP proxy.
//
//   - procfleet: a clustered `procfleet agent` with every /proc generator
//     disabled (a dedicated scraper), its job in the cluster document of
//     an etcd embedded in this process, with the settings recommended for
//     a dedicated scraper (-procfleet-agent, -procfleet-gogc) and a spool
//     directory;
//   - vmagent: -promscrape.config listing the same targets,
//     -remoteWrite.url to its VictoriaMetrics.
//
// After a warm-up, the same window is measured on both: CPU seconds
// (utime+stime of /proc/PID/stat), VmRSS sampled every 250 ms and VmHWM,
// bytes each sent to its VictoriaMetrics (headers included, as compressed
// on the wire), scrapes answered by the targets and rows VictoriaMetrics
// inserted. One JSON object goes to stdout, progress to stderr.
//
// It drives the binaries in bin/ (`make bench-scrape` builds them) and
// imports no procfleet package, so it measures what users run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// scraperAgent is the set-up docs/performance.md recommends for a
// dedicated scraper: zstd batches, and a memory queue of 8 MiB that spills
// to the spool (the harness gives procfleet a spool directory, as vmagent
// has its -remoteWrite.tmpDataPath).
const scraperAgent = "compress: {encoding: zstd}; ship: {queue_bytes: 8MiB}"

// options are the command-line flags.
type options struct {
	bin      string
	targets  int
	series   int
	interval time.Duration
	duration time.Duration
	warmup   time.Duration
	dir      string
	profile  string // directory for procfleet's CPU profile of the window; "" for none
	agent    string // YAML added under agents: in procfleet's cluster document
	protocol string // procfleet's upstream protocol: import or remote_write
	gogc     string // GOGC in procfleet's environment; "" leaves it unset
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory with procfleet, vmagent and victoria-metrics")
	flag.IntVar(&o.targets, "targets", 1000, "targets served, each its own HTTP server on loopback")
	flag.IntVar(&o.series, "series", 1000, "series per target")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "scrape interval of both scrapers")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measured window")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Minute, "time after the start that is not measured (VictoriaMetrics creating the new series queues both scrapers at first)")
	flag.StringVar(&o.dir, "dir", "", "directory for data and logs (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.profile, "profile", "", "directory to write procfleet's CPU profile of the measured window (cpu.pprof) and its heap profile at the end of it (heap.pprof) to; empty for none")
	flag.StringVar(&o.agent, "procfleet-agent", scraperAgent, "keys added under agents: in procfleet's cluster document, ';' between them; empty for procfleet's defaults")
	flag.StringVar(&o.protocol, "procfleet-protocol", "import", "procfleet's upstream protocol: import (/api/v1/import/prometheus) or remote_write (/api/v1/write)")
	flag.StringVar(&o.gogc, "procfleet-gogc", "50", "GOGC for procfleet (it is started through env(1)), 50 as vmagent sets its own; empty leaves it unset")
	flag.Parse()
	if o.protocol != "import" && o.protocol != "remote_write" {
		fmt.Fprintln(os.Stderr, "scrape: want -procfleet-protocol import or remote_write")
		os.Exit(2)
	}
	if o.targets < 1 || o.series < families || o.interval < time.Second || o.duration < o.interval || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "scrape: want -targets >= 1, -series >= 10, -interval >= 1s, -duration >= -interval, -warmup >= 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scrape:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// logf writes a progress line to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
