package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// agentGCPercent is the standalone agent's GOGC unless the environment
// sets GOGC. It allocates little (about 100 KB/s with the default config, a
// garbage collection every 20 to 40 s at Go's default of 100), so its heap
// stays at the size its start and its largest cycles grew it to: about
// twice the live heap of 4 MB. At 25 the heap is held to 1.25 times the
// live one, 2 MiB less resident memory, for the same CPU seconds in a 3
// minute run side by side (docs/performance.md). A clustered agent keeps
// Go's default: its etcd client and gossip allocate about 1 MB/s, and at
// 25 it spent 15 to 29% more CPU. A memory limit (GOMEMLIMIT) low enough
// to matter doubled the standalone agent's CPU.
const agentGCPercent = 25

// setAgentGCPercent sets the garbage collector's target percentage to
// agentGCPercent for a standalone agent unless $GOGC is set, and returns
// the percentage in effect and whether it came from $GOGC.
func setAgentGCPercent(clustered bool) (percent int, fromEnv bool) {
	_, fromEnv = os.LookupEnv("GOGC")
	if fromEnv || clustered {
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
