package agent

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/agent/emit"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/testenv"
)

// fixtureConfig returns an agent config that reads the static fixture tree,
// so that every value the agent pushes is known in advance.
func fixtureConfig(t *testing.T, upstream, host string) config.Agent {
	t.Helper()
	root := testenv.RepoRoot(t)
	cfg := config.DefaultAgent()
	cfg.Hostname = host
	cfg.Listen = "127.0.0.1:0"
	cfg.ProcfsRoot = filepath.Join(root, "testdata", "fixtures", "proc")
	cfg.SysfsRoot = filepath.Join(root, "testdata", "fixtures", "sys")
	cfg.FullEvery = 2
	cfg.Ship.Upstreams = []string{upstream}
	cfg.Compress.FlushAge = config.Duration(200 * time.Millisecond)
	g := &cfg.Generators
	for _, p := range []*config.Generator{&g.Stat, &g.Meminfo, &g.Loadavg, &g.Vmstat, &g.Netdev, &g.Netstat,
		&g.Diskstats, &g.Sockstat, &g.Filefd, &g.Pressure, &g.Interrupts, &g.Softirqs, &g.Self} {
		p.Interval = config.Duration(250 * time.Millisecond)
	}
	g.Process.Interval = config.Duration(250 * time.Millisecond)
	return cfg
}

// expected runs every generator of cfg once and returns what it read, keyed
// as VictoriaMetrics will export it (with instance and job).
func expected(t *testing.T, cfg config.Agent) map[string]float64 {
	t.Helper()
	gens, err := Generators(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, g := range gens {
		out, err := emit.Collect(g)
		if err != nil {
			t.Logf("generator %s on the fixture: %v", g.Name(), err)
		}
		samples, err := testenv.ParseSamples(out)
		if err != nil {
			t.Fatalf("generator %s wrote unparsable text: %v", g.Name(), err)
		}
		for _, s := range samples {
			s.Labels["instance"] = cfg.Hostname
			s.Labels["job"] = cfg.Job
			want[s.Key()] = s.Value
		}
	}
	if len(want) < 100 {
		t.Fatalf("the fixture yields only %d series; is testdata/fixtures/proc complete?", len(want))
	}
	return want
}

// runAgent starts an agent and returns it with a function that stops it
// and returns Run's error; the test's cleanup stops it too.
func runAgent(t *testing.T, cfg config.Agent) (*Agent, func() error) {
	t.Helper()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, startAgent(t, a)
}

// startAgent runs a and returns a function that stops it and returns
// Run's error; the test's cleanup stops it too.
func startAgent(t *testing.T, a *Agent) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-errc:
		t.Fatalf("agent stopped at start: %v", err)
	}
	stop := testenv.StopOnce(cancel, errc, "the agent's Run", 30*time.Second)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// TestAgentToVictoriaMetrics runs the agent against the real VictoriaMetrics
// and checks that every value it read arrives, unchanged, with its labels,
// in gzip batches and in zstd ones (compress.encoding).
func TestAgentToVictoriaMetrics(t *testing.T) {
	for _, enc := range []string{config.EncodingGzip, config.EncodingZstd} {
		t.Run(enc, func(t *testing.T) { testAgentToVictoriaMetrics(t, enc) })
	}
}

// testAgentToVictoriaMetrics runs TestAgentToVictoriaMetrics with the
// batches in encoding enc (compress.encoding).
func testAgentToVictoriaMetrics(t *testing.T, enc string) {
	vm := testenv.StartVM(t)
	cfg := fixtureConfig(t, vm.ImportURL, "itest-host")
	cfg.Compress.Encoding = enc
	want := expected(t, cfg)
	a, _ := runAgent(t, cfg)

	var got map[string][]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm.Flush(t)
		series, err := vm.TryExport(`{instance="itest-host",job="procfleet"}`)
		if err == nil {
			got = map[string][]float64{}
			for _, s := range series {
				got[s.Key()] = s.Values
			}
			missing := 0
			for k := range want {
				if _, ok := got[k]; !ok {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				n := 0
				for k := range want {
					if _, ok := got[k]; !ok && n < 10 {
						t.Errorf("never arrived: %s", k)
						n++
					}
				}
				t.Fatalf("%d of %d series never arrived in VictoriaMetrics", missing, len(want))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	for k, w := range want {
		for _, v := range got[k] {
			// VictoriaMetrics stores values as decimals with a 64-bit
			// mantissa: the last of 17 significant digits may change.
			if v != w && !(v != v && w != w) && math.Abs(v-w) > 1e-12*math.Abs(w) {
				t.Errorf("%s: VictoriaMetrics holds %v, the generator read %v", k, v, w)
				break
			}
		}
	}
	selfSeries := 0
	for k := range got {
		if strings.HasPrefix(k, "procfleet_") {
			selfSeries++
			continue
		}
		if _, ok := want[k]; !ok {
			t.Errorf("VictoriaMetrics holds %s, which no generator read", k)
		}
	}
	if selfSeries == 0 {
		t.Error("no procfleet_* self-metrics arrived through the pipeline")
	}

	// Once the shipper streams, the compressor hands it text and the
	// stream compresses it: the count of text batches arrives through it.
	waitForVM(t, vm, `procfleet_compress_text_batches_total{instance="itest-host"}`, 30*time.Second, func(v float64) bool { return v >= 3 })

	// The self HTTP server answers.
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/metrics": `procfleet_generator_runs_total{generator="stat"}`,
	} {
		body := httpGet(t, "http://"+a.Addr()+path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s lacks %q", path, want)
		}
	}
}

// TestAgentFlushesOnStop stops the agent long before its flush age: the
// last batch must still be delivered.
func TestAgentFlushesOnStop(t *testing.T) {
	vm := testenv.StartVM(t)
	cfg := fixtureConfig(t, vm.ImportURL, "stop-host")
	cfg.Compress.FlushAge = config.Duration(time.Minute)
	cfg.Compress.TargetBytes = 64 << 20
	_, stop := runAgent(t, cfg)
	time.Sleep(700 * time.Millisecond)
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("agent stopped with %v", err)
	}
	t.Logf("agent stopped in %s", time.Since(t0))
	deadline := time.Now().Add(20 * time.Second)
	for {
		vm.Flush(t)
		series, err := vm.TryExport(`node_load1{instance="stop-host"}`)
		if err == nil && len(series) == 1 {
			t.Logf("data queryable %s after stop", time.Since(t0))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch held at stop never arrived (err %v, %d series)", err, len(series))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestNewRejectsNoUpstream(t *testing.T) {
	cfg := config.DefaultAgent()
	_, err := New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "ship.upstreams") {
		t.Fatalf("agent without upstreams: %v", err)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return b.String()
}

// waitForVM polls vm until the last value of the series selected by query
// satisfies ok.
func waitForVM(t *testing.T, vm *testenv.VM, query string, timeout time.Duration, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []float64
	for time.Now().Before(deadline) {
		vm.Flush(t)
		series, err := vm.TryExport(query)
		if err == nil && len(series) == 1 && len(series[0].Values) > 0 {
			last = series[0].Values
			if ok(last[len(last)-1]) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: VictoriaMetrics holds %v after %s", query, last, timeout)
}
