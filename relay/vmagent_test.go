package relay

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// vmagent v1.151.0 scrapes the relay's own /metrics and remote-writes
// every scrape twice: through the relay (its /api/v1/write, stored as
// import lines and forwarded to one VictoriaMetrics) and straight to a
// second VictoriaMetrics' /api/v1/write. Both stores end up with the same
// series, values and timestamps.
func TestVmagentThroughRelay(t *testing.T) {
	viaRelay, direct := testenv.StartVM(t), testenv.StartVM(t)
	r := start(t, testConfig(t, viaRelay.ImportURL))
	dir := t.TempDir()
	scrape := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(scrape, []byte(fmt.Sprintf(`scrape_configs:
  - job_name: rwtest
    scrape_interval: 1s
    static_configs:
      - targets: [%q]
        labels: {path: 'C:\temp "x"', zone: "ünï"}
`, r.Addr())), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Bin(t, "vmagent"),
		"-httpListenAddr="+testenv.FreeAddr(t),
		"-promscrape.config="+scrape,
		"-promscrape.noStaleMarkers",
		"-remoteWrite.tmpDataPath="+filepath.Join(dir, "queue"),
		"-remoteWrite.url="+r.base+WritePath,
		"-remoteWrite.url=http://"+direct.Addr+"/api/v1/write",
		"-remoteWrite.flushInterval=200ms",
		"-loggerLevel=WARN")
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	// Four scrapes reached the relay, then vmagent stops, flushing what
	// it holds to both.
	waitFor(t, "4 scrapes remote-written to the relay", 30*time.Second, func() bool {
		return r.metric(t, `procfleet_relay_remote_write_requests_total{version="1"}`) >= 4
	})
	stop()
	waitFor(t, "the relay's log forwarded", 20*time.Second, func() bool { return r.WAL().Len() == 0 })
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="bad_series"}`); n != 0 {
		t.Fatalf("the relay refused %v of vmagent's requests", n)
	}
	// vmagent tries VictoriaMetrics' zstd variant first, gets 415, and
	// sends that block again with snappy.
	if n := r.metric(t, `procfleet_relay_rejected_total{reason="unsupported_encoding"}`); n != 1 {
		t.Errorf("unsupported_encoding refusals = %v; want the one that turns vmagent to snappy", n)
	}
	export := func(vm *testenv.VM) map[string]testenv.Series {
		vm.Flush(t)
		out := map[string]testenv.Series{}
		for _, s := range vm.Export(t, `{job="rwtest"}`) {
			out[s.Key()] = s
		}
		return out
	}
	var got, want map[string]testenv.Series
	samples := func(m map[string]testenv.Series) (n int) {
		for _, s := range m {
			n += len(s.Values)
		}
		return n
	}
	// The direct copy may still be on its way when the relay's is in.
	waitFor(t, "both stores hold the same number of samples", 20*time.Second, func() bool {
		got, want = export(viaRelay), export(direct)
		return len(want) > 50 && samples(got) == samples(want)
	})
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("series %s reached VictoriaMetrics directly but not through the relay", k)
		}
		if !slices.Equal(g.Timestamps, w.Timestamps) || fmt.Sprint(g.Values) != fmt.Sprint(w.Values) {
			t.Fatalf("%s: through the relay %v at %v; directly %v at %v", k, g.Values, g.Timestamps, w.Values, w.Timestamps)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d series through the relay; %d directly", len(got), len(want))
	}
	up := testenv.SeriesKey("up", map[string]string{"job": "rwtest", "instance": r.Addr(), "path": `C:\temp "x"`, "zone": "ünï"})
	if s, ok := got[up]; !ok || len(s.Values) < 3 || s.Values[0] != 1 {
		t.Fatalf("up through the relay: %+v, %v; want 1 at least 3 times, with the target's labels", s, ok)
	}
	t.Logf("%d series, %d samples the same in both stores", len(got), samples(got))
}
