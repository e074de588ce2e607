// Command soak runs the relay under hostile load for a while and checks
// that it holds: the relay binary (bin/procfleet relay) in front of a real
// VictoriaMetrics (bin/victoria-metrics), with
//
//   - slow clients, each sending an import body one byte a second with a
//     valid token and starting again when the relay cuts it off;
//   - fast agents, each pushing a gzip body of known series once a second,
//     and trying a body again until the relay takes it;
//   - the bearer token file rotated every so often: the clients switch to
//     the next token, then the file is replaced without the old one.
//
// At the end it waits for the relay to forward everything and counts in
// VictoriaMetrics every sample the relay acknowledged. It reports the fast
// agents' import latency, the relay's peak resident memory and the counts
// as JSON on stdout and a table on stderr; with -check it exits 1 when the
// fast p99 latency, the peak memory or a lost sample misses its threshold.
// `make soak` runs it for 10 minutes.
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
	duration    time.Duration
	bin         string
	fast, slow  int
	series      int
	rotate      time.Duration
	readTimeout time.Duration // import.read_timeout; 0 keeps the relay's default
	maxP99      time.Duration
	maxRSS      int64
	check, keep bool
}

func defaultOptions() options {
	return options{
		duration: 10 * time.Minute, bin: "bin", fast: 8, slow: 50, series: 200,
		rotate: 30 * time.Second, maxP99: 200 * time.Millisecond, maxRSS: 256 << 20,
	}
}

func main() {
	o := defaultOptions()
	var maxRSSMiB int64
	flag.DurationVar(&o.duration, "duration", o.duration, "how long the fast agents push")
	flag.StringVar(&o.bin, "bin", o.bin, "directory holding procfleet and victoria-metrics")
	flag.IntVar(&o.fast, "fast", o.fast, "fast agents, each pushing a body once a second")
	flag.IntVar(&o.slow, "slow", o.slow, "slow clients, each sending one byte a second")
	flag.IntVar(&o.series, "series", o.series, "series in each fast agent's body")
	flag.DurationVar(&o.rotate, "rotate", o.rotate, "period of the token rotation")
	flag.DurationVar(&o.readTimeout, "read-timeout", 0, "the relay's import.read_timeout; 0 keeps its default")
	flag.DurationVar(&o.maxP99, "max-p99", o.maxP99, "threshold of the fast agents' p99 import latency")
	flag.Int64Var(&maxRSSMiB, "max-rss-mib", o.maxRSS>>20, "threshold of the relay's peak resident memory, MiB")
	flag.BoolVar(&o.check, "check", false, "exit 1 when a threshold is missed or a sample lost")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, log, VictoriaMetrics data)")
	flag.Parse()
	o.maxRSS = maxRSSMiB << 20
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, o)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	printTable(os.Stderr, rep)
	if o.check && !rep.ThresholdsMet {
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.duration < 5*time.Second:
		return fmt.Errorf("-duration %s: want at least 5s", o.duration)
	case o.fast < 1 || o.slow < 0 || o.series < 1:
		return fmt.Errorf("-fast %d, -slow %d, -series %d: want at least 1, 0 and 1", o.fast, o.slow, o.series)
	case o.rotate < 3*time.Second:
		return fmt.Errorf("-rotate %s: want at least 3s (a rotation waits 2s for requests with the old token)", o.rotate)
	}
	for _, name := range []string{"procfleet", "victoria-metrics"} {
		if _, err := os.Stat(o.bin + "/" + name); err != nil {
			return fmt.Errorf("-bin %s: %w (make build tools builds them)", o.bin, err)
		}
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
