package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// binProc runs the procfleet binary as a service manager would, one run
// at a time, each run's output in its own file. A run that exits by
// itself before the test stops it is a crash, and fails the test.
type binProc struct {
	t    *testing.T
	name string
	args func() []string // the arguments of the next run
	addr string          // its HTTP address, for /metrics

	cmd  *exec.Cmd
	done chan struct{} // closed when the running process exited
	err  error         // its exit, valid once done is closed
	logs []string      // one file per run
}

func newBinProc(t *testing.T, name, addr string, args func() []string) *binProc {
	p := &binProc{t: t, name: name, addr: addr, args: args}
	t.Cleanup(func() {
		p.stopWith(syscall.SIGKILL)
		if t.Failed() {
			for i, l := range p.logs {
				b, _ := os.ReadFile(l)
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("%s run %d output (tail):\n%s", p.name, i+1, b)
			}
		}
	})
	return p
}

// start starts a new run; the previous one must be stopped.
func (p *binProc) start() {
	p.t.Helper()
	logf, err := os.Create(filepath.Join(p.t.TempDir(), fmt.Sprintf("%s-%d.log", p.name, len(p.logs)+1)))
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(binary, p.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.done, p.logs = cmd, make(chan struct{}), append(p.logs, logf.Name())
	done := p.done
	go func() {
		p.err = cmd.Wait()
		close(done)
	}()
}

// running reports whether the current run is alive, and fails the test
// when it exited by itself.
func (p *binProc) running() bool {
	p.t.Helper()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		p.t.Errorf("%s exited by itself (%v); see its output", p.name, p.err)
		return false
	default:
		return true
	}
}

// kill stops the current run with SIGKILL, as a crash or the OOM killer
// would, and waits until it is gone.
func (p *binProc) kill() { p.t.Helper(); p.running(); p.stopWith(syscall.SIGKILL) }

func (p *binProc) stopWith(sig syscall.Signal) {
	if p.done == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.done
	p.done = nil
}

// log returns the output of every run so far.
func (p *binProc) log() string {
	var b strings.Builder
	for _, l := range p.logs {
		data, _ := os.ReadFile(l)
		b.Write(data)
	}
	return b.String()
}

// metric returns the sum of the series of name (see testenv.SumMetric) on
// the process's /metrics.
func (p *binProc) metric(name string) (float64, error) {
	return testenv.ScrapeMetric("http://"+p.addr+"/metrics", name)
}

// mustMetric is metric that fails the test on error.
func (p *binProc) mustMetric(name string) float64 {
	p.t.Helper()
	v, err := p.metric(name)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// relayProc is a relay binary with its listen address and data dir kept
// across runs; the upstream may change between runs.
type relayProc struct {
	*binProc
	upstream string
}

// newRelay prepares a relay on a free loopback port with data dir dir and
// the config document cfg (YAML, may be empty). It starts nothing.
func newRelay(t *testing.T, dir, cfg, upstream string) *relayProc {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "relay.yaml")
	writeFile(t, cfgFile, cfg)
	r := &relayProc{upstream: upstream}
	addr := testenv.FreeAddr(t)
	r.binProc = newBinProc(t, "relay", addr, func() []string {
		return []string{"relay", "--config", cfgFile, "--listen", addr, "--data-dir", dir, "--upstream", r.upstream}
	})
	return r
}

// importURL is the relay's import endpoint.
func (r *relayProc) importURL() string { return "http://" + r.addr + "/api/v1/import/prometheus" }

// waitReady waits until /readyz answers 200 and returns how long it took.
func (r *relayProc) waitReady() time.Duration {
	r.t.Helper()
	return testenv.Eventually(r.t, 20*time.Second, 20*time.Millisecond, "the relay's /readyz", func() error {
		if !r.running() {
			r.t.FailNow()
		}
		return getErr("http://" + r.addr + "/readyz")
	})
}

// waitDrained waits until the relay's log holds no record and returns how
// long it took.
func (r *relayProc) waitDrained(timeout time.Duration) time.Duration {
	r.t.Helper()
	return testenv.Eventually(r.t, timeout, 50*time.Millisecond, "the relay's log to drain", func() error {
		v, err := r.metric("procfleet_spool_records")
		if err == nil && v != 0 {
			err = fmt.Errorf("procfleet_spool_records %v", v)
		}
		return err
	})
}

// getErr returns nil when GET url answers 200.
func getErr(url string) error {
	_, err := tryGet(url)
	return err
}

// relayShipConfig is the ship block of the tests' relays: short timeouts,
// backoffs and probes, so that an upstream that comes back is used within
// a fraction of a second.
const relayShipConfig = `
ship:
  timeouts: {connect: 1s, send: 5s, response: 5s}
  retry: {min_backoff: 50ms, max_backoff: 500ms}
  probe_interval: 200ms
`
