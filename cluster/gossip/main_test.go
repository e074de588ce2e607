package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/procfleet/procfleet/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithLeakCheck(m) }

// node is one running Gossip of a test.
type node struct {
	name string
	g    *Gossip
	set  *metrics.Set

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
}

// testConfig returns the defaults on a free loopback port.
func testConfig(name string) Config {
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.Cluster = "test"
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0
	return cfg
}

// testLogger writes info and above to the test's output; debug too, with
// memberlist's own lines, when GOSSIP_DEBUG is set. Memberlist may log
// for a moment after Run returns, so debug logs go to stderr, not to
// the test.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("GOSSIP_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startNode runs a member with cfg, joins it through seeds and stops it
// when the test ends.
func startNode(t *testing.T, cfg Config, seeds ...string) *node {
	t.Helper()
	return startNodeDeps(t, cfg, Deps{}, seeds...)
}

// startNodeDeps is startNode with deps; their Logger and Metrics are the
// test's.
func startNodeDeps(t *testing.T, cfg Config, deps Deps, seeds ...string) *node {
	t.Helper()
	n := &node{name: cfg.NodeName, set: metrics.NewSet(), done: make(chan struct{})}
	deps.Logger, deps.Metrics = testLogger(t), n.set
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	n.g = g
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		n.err = g.Run(ctx)
		close(n.done)
	}()
	t.Cleanup(func() { n.stop(t) })
	select {
	case <-g.Ready():
	case <-n.done:
		t.Fatalf("%s: Run: %v", cfg.NodeName, n.err)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not ready after 5s", cfg.NodeName)
	}
	if len(seeds) > 0 {
		if _, err := g.Join(seeds); err != nil {
			t.Fatalf("%s: %v", cfg.NodeName, err)
		}
	}
	return n
}

// startCluster runs k members named n0..n(k-1), each joined through n0.
func startCluster(t *testing.T, k int) []*node {
	t.Helper()
	nodes := []*node{startNode(t, testConfig("n0"))}
	for i := 1; i < k; i++ {
		nodes = append(nodes, startNode(t, testConfig(fmt.Sprintf("n%d", i)), nodes[0].g.Addr()))
	}
	waitMembers(t, convergeWithin, nodes, names(nodes))
	return nodes
}

// convergeWithin bounds the time for members joined through one seed to
// know each other: the gossip's broadcasts tell them within a second on a
// quiet machine, and the full state exchange every PushPullInterval at the
// latest, which bounds it when the broadcasts come late on a loaded one
// (a 5 s bound failed once in a -race -count=3 run of several packages).
var convergeWithin = testConfig("bound").PushPullInterval + 5*time.Second

// stop cancels Run and waits for it to return: with a leave, unless kill
// was called.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.once.Do(func() {
		n.cancel()
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return 10s after its context ended", n.name)
			return
		}
		if n.err != nil {
			t.Errorf("%s: Run: %v", n.name, n.err)
		}
	})
}

// kill stops n as a crash would: the memberlist shuts down without
// leaving, and the others must detect it.
func (n *node) kill(t *testing.T) {
	t.Helper()
	n.g.skipLeave.Store(true)
	n.stop(t)
}

func names(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond until it holds and returns how long that took, or
// fails the test after timeout with what() describing the last state.
// Each every, if given, runs once a second while waiting.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what func() string, every ...func()) time.Duration {
	t.Helper()
	start, last := time.Now(), time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %s", timeout, what())
		}
		if time.Since(last) >= time.Second {
			for _, f := range every {
				f()
			}
			last = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// waitMembers waits until every one of nodes sees exactly want, both in
// Members and in the keys of States.
func waitMembers(t *testing.T, timeout time.Duration, nodes []*node, want []string) time.Duration {
	t.Helper()
	var last string
	return waitFor(t, timeout, func() bool {
		for _, n := range nodes {
			got := n.g.Members()
			if !slices.Equal(got, want) {
				last = fmt.Sprintf("%s sees members %v, want %v", n.name, got, want)
				return false
			}
			var st []string
			for name := range n.g.States() {
				st = append(st, name)
			}
			slices.Sort(st)
			if !slices.Equal(st, want) {
				last = fmt.Sprintf("%s has states of %v, want %v", n.name, st, want)
				return false
			}
		}
		return true
	}, func() string { return last })
}

// without returns nodes less the one named name.
func without(nodes []*node, name string) []*node {
	return slices.DeleteFunc(slices.Clone(nodes), func(n *node) bool { return n.name == name })
}

// metricValue returns the value of the metric named name in set.
func metricValue(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	var b strings.Builder
	set.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in\n%s", name, b.String())
	return 0
}

// settled waits until n's loop has passed on every change signalled so
// far to the subscribers.
func settled(t *testing.T, n *node) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool { return n.g.forwarded.Load() == n.g.signals.Load() },
		func() string {
			return fmt.Sprintf("%s: %d signals, %d passed on", n.name, n.g.signals.Load(), n.g.forwarded.Load())
		})
}
