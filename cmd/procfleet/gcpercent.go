package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// agentGCPercent is the agent's GOGC unless the environment sets GOGC. It
// allocates little (about 100 KB/s standalone with the default config, a
// garbage collection every 20 to 40 s at Go's default of 100), so its heap
// stays at the size its start and its largest cycles grew it to: about
// twice the live heap of 4 MB. At 25 the heap is held to 1.25 times the
// live one, 2 MiB less resident memory, for the same CPU seconds in a 3
// minute run side by side (docs/performance.md). A clustered agent kept
// Go's default while its gossip allocated 64 KiB per packet received
// (about 1 MB/s in all; at 25 it spent 15 to 29% more CPU); with the
// gossip's own transport it allocates about as little as a standalone
// one, and 25 held it 3.8 MiB smaller for 7% more CPU than 100, still
// less than before the transport. A memory limit (GOMEMLIMIT) low enough
// to matter doubled the standalone agent's CPU.
//
// It holds while the live heap is small (gcPercentFor): a dedicated
// scraper's heap of tens of MiB, allocated at megabytes a second, is
// collected at scraperGCPercent, where a quarter would cost its CPU for
// memory that is no longer a few MiB against a whole agent's.
const agentGCPercent = 25

// scraperGCPercent is the percentage for a big live heap: 50, what vmagent
// sets for itself. Against vmagent on 1,000 targets (bench-scrape) a
// scraper at Go's 100 peaked at 1.18 times vmagent's RSS, at 50 at 0.92
// to 0.96 times, for CPU within the runs' noise (docs/performance.md).
const scraperGCPercent = 50

// bigHeap is the live heap from which the agent collects at
// scraperGCPercent rather than agentGCPercent; below half of it, at
// agentGCPercent again. A /proc agent's live heap is 4 to 8 MB, a
// dedicated scraper's tens of MiB.
const bigHeap = 32 << 20

// gcPercentFor returns the collector's percentage for a live heap of live
// bytes, cur being the one in effect: scraperGCPercent from bigHeap up,
// agentGCPercent below bigHeap/2, cur in between.
func gcPercentFor(live uint64, cur int) int {
	switch {
	case live >= bigHeap:
		return scraperGCPercent
	case live < bigHeap/2:
		return agentGCPercent
	}
	return cur
}

// tuneGCPercent reads the live heap every interval until ctx is done and
// sets the collector's percentage gcPercentFor gives. It is not run when
// $GOGC is set.
func tuneGCPercent(ctx context.Context, every time.Duration, log *slog.Logger) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := agentGCPercent
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		live := s[0].Value.Uint64()
		if next := gcPercentFor(live, cur); next != cur {
			debug.SetGCPercent(next)
			log.Debug("go runtime: garbage collector percentage changed", "gc_percent", next, "live_heap_bytes", live)
			cur = next
		}
	}
}

// setAgentGCPercent sets the garbage collector's target percentage to
// agentGCPercent unless $GOGC is set, and returns the percentage in
// effect and whether it came from $GOGC.
func setAgentGCPercent() (percent int, fromEnv bool) {
	_, fromEnv = os.LookupEnv("GOGC")
	if fromEnv {
		p := debug.SetGCPercent(-1) // read, then restore
		debug.SetGCPercent(p)
		return p, fromEnv
	}
	debug.SetGCPercent(agentGCPercent)
	return agentGCPercent, false
}

// setHeapProfile turns the Go runtime's heap profile off when the agent
// serves no profiles (pprofListen empty, the default) and reports whether
// it stays on. Each sampled allocation, one every 512 KiB, walks its
// stack through the binary's function tables: pages of the file that the
// agent otherwise never maps (about 0.4 MiB of resident memory,
// docs/performance.md), for a profile nobody can fetch.
func setHeapProfile(pprofListen string) bool {
	if pprofListen == "" {
		runtime.MemProfileRate = 0
		return false
	}
	return runtime.MemProfileRate > 0
}
