package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestSoakShort runs the soak for 25 seconds with the relay cutting slow
// clients off after 5: every acknowledged sample is in VictoriaMetrics,
// token rotations cost the fast agents no refusal, and slow clients do not
// block them (they are held by the relay while the fast agents push, and
// no fast import waits anywhere near the read timeout). The latency and
// memory thresholds of `make soak` are not asserted: this machine may be
// loaded by other tests.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "procfleet"), "../../cmd/procfleet")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build procfleet: %v\n%s", err, out)
	}
	if err := os.Symlink(testenv.Bin(t, "victoria-metrics"), filepath.Join(bin, "victoria-metrics")); err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.bin, o.duration, o.rotate, o.readTimeout, o.series = bin, 25*time.Second, 8*time.Second, 5*time.Second, 100
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	printTable(testWriter{t}, rep)
	if rep.LostSamples != 0 || rep.AckedBodies < o.fast*15 {
		t.Fatalf("%d bodies acknowledged, %d acknowledged samples missing; want at least %d, none missing", rep.AckedBodies, rep.LostSamples, o.fast*15)
	}
	if rep.FastStatus["204"] != rep.FastRequests {
		t.Fatalf("fast agents got %v; want only 204 (token rotations included)", rep.FastStatus)
	}
	if rep.TokenRotations < 2 {
		t.Fatalf("%d token rotations; want at least 2", rep.TokenRotations)
	}
	if rep.PeakInflight < float64(o.slow*4<<10) || rep.SlowStatus["408"] < o.slow {
		t.Fatalf("slow clients: relay held at most %v bytes, answers %v; want every one held and cut off with 408", rep.PeakInflight, rep.SlowStatus)
	}
	if rep.LatencyMaxMs >= float64(o.readTimeout.Milliseconds()) {
		t.Fatalf("slowest fast import took %.0f ms, as long as the slow clients' read timeout: it waited for them", rep.LatencyMaxMs)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
