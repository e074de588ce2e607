package main

import (
	"log/slog"
	"os"
	"runtime"
	"sync"
)

// agentProcs is the agent's GOMAXPROCS while it scrapes nothing: its
// work is a few milliseconds a second of /proc reads, compression and
// shipping, passed between a handful of goroutines. With a P per core
// each hand-off may wake another thread (futex calls, idle Ps spinning)
// and each P keeps caches of its own; side by side on 2 cores, one P cut
// the agent's CPU by 10% and its resident memory by 0.7 MiB
// (docs/performance.md). node_exporter runs with one too
// (--runtime.gomaxprocs). An agent given scrape targets (a cluster's
// scrape jobs) takes Go's default back: a dedicated scraper parses on
// every core.
const agentProcs = 1

// procsPolicy sets GOMAXPROCS to agentProcs while the agent scrapes
// nothing and to Go's default while it does, unless $GOMAXPROCS is set.
// A nil policy does nothing.
type procsPolicy struct {
	log     *slog.Logger
	mu      sync.Mutex
	fromEnv bool
	one     bool // GOMAXPROCS is agentProcs
}

// agentProcsPolicy is the running agent's, set by the agent command; nil
// elsewhere (procfleet dev, tests), which keeps Go's default.
var agentProcsPolicy *procsPolicy

// newProcsPolicy returns a policy and applies it for an agent that
// scrapes nothing yet.
func newProcsPolicy(log *slog.Logger) *procsPolicy {
	_, env := os.LookupEnv("GOMAXPROCS")
	p := &procsPolicy{log: log, fromEnv: env}
	p.scraping(false)
	return p
}

// scraping applies the policy for an agent that scrapes (yes) or not.
func (p *procsPolicy) scraping(yes bool) {
	if p == nil || p.fromEnv {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !yes && !p.one:
		runtime.GOMAXPROCS(agentProcs)
		p.one = true
	case yes && p.one:
		runtime.SetDefaultGOMAXPROCS()
		p.one = false
	default:
		return
	}
	p.log.Debug("go runtime: GOMAXPROCS set", "gomaxprocs", runtime.GOMAXPROCS(0), "scraping", yes)
}
