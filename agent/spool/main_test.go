package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/internal/testenv"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// testConfig is a config with small segments and every ack persisted.
func testConfig(segmentBytes int64) Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = segmentBytes
	cfg.AckInterval = 0
	return cfg
}

// openLog opens dir and closes the log at the end of the test.
func openLog(t *testing.T, dir string, cfg Config) (*Log, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	l, err := Open(dir, cfg, set)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, set
}

// payload returns the test payload of record i.
func payload(i int) []byte {
	return []byte(fmt.Sprintf("record-%d-%s", i, strings.Repeat("x", i%37)))
}

// appendN appends payload(from) .. payload(from+n-1), created now.
func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(payload(i), time.Now()); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// drain returns every record Next gives until it would block, acking each
// when ack is set and stopping after max records.
func drain(t *testing.T, l *Log, ack bool, max int) []Record {
	t.Helper()
	var recs []Record
	for len(recs) < max {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		r, err := l.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, r)
		if !ack {
			break
		}
		if err := l.Ack(r.Seq); err != nil {
			t.Fatalf("Ack %d: %v", r.Seq, err)
		}
	}
	return recs
}

// payloadsOf returns the payloads of recs as strings.
func payloadsOf(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Data))
	}
	return out
}

// wantPayloads returns payload(i) for each i in idx as strings.
func wantPayloads(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, string(payload(i)))
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// segmentFiles returns the segment file names in dir, sorted.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// metricValue returns the value of the series named exactly name in set,
// or -1 when absent.
func metricValue(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	return testenv.MetricValue(t, set, name)
}

// mutate rewrites a file with f applied to its bytes.
func mutate(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fmtSscanf reads the record number from a payload.
func fmtSscanf(s string, id *int) (int, error) { return fmt.Sscanf(s, "record-%d-", id) }

// waitParked waits until a goroutine is parked with a wait reason that
// starts with reason ("select", "sync.Cond.Wait") inside the method fn of
// this package, as a stack trace names it ("(*Log).NextN"): proof that it
// reached the wait the test is about, which a sleep gives only on an idle
// machine.
func waitParked(t *testing.T, fn, reason string) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, frames, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "["+reason) && strings.Contains(frames, "/agent/spool."+fn+"(") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine parked (%s) in %s within 10s", reason, fn)
		}
	}
}

// recvErr returns the error that a blocked call sends on done, failing
// the test when it does not return within 10s.
func recvErr(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s", what)
		return nil
	}
}
