// Command fleet simulates a procfleet fleet of N members against a real
// three-node etcd cluster (three etcd server processes built into bin/)
// and prints one JSON report: etcd's CPU, memory, database size, requests
// and watch events per second in steady state, how long the fleet takes
// to apply a config change, what a rolling restart of a tenth of the fleet
// costs each member, and, at one size, how the fleet rides out etcd
// faults. Each simulated member is the real cluster.Member (its own etcd
// client, session and lease, registration, status writes, config and
// member watches, ring) without an agent; a subset runs real memberlist
// gossip on loopback, the rest runs with cluster.Config.NoGossip.
//
//	make bench-fleet
//	go run ./bench/fleet -bin bin -n 1000,3000 -faults 3000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	bin       string
	sizes     []int
	faults    int
	gossipers int
	steady    time.Duration
	outage    time.Duration
	port      int
	batch     int
	verbose   bool
	pprof     string
	shareRing bool
	etcdNice  int
	etcdCPUs  string
	procs     int
	partial   string
	// memLimit is the simulator's soft memory limit in bytes, shared by
	// its processes (runtime/debug.SetMemoryLimit).
	memLimit int64
	// startTimeout bounds a fleet's start.
	startTimeout time.Duration
	dir          string
}

func main() {
	var o options
	var co childOptions
	var sizes string
	var isChild bool
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the etcd binary (make bench-fleet builds bin/etcd)")
	flag.StringVar(&sizes, "n", "1000,3000,10000", "fleet sizes to simulate, comma-separated, run in this order")
	flag.IntVar(&o.faults, "faults", 3000, "fleet size at which to inject etcd faults (0: none); the largest size run when it is not among -n")
	flag.IntVar(&o.gossipers, "gossip", 100, "members that run real gossip on loopback; the others run without gossip")
	flag.DurationVar(&o.steady, "steady", 30*time.Second, "steady-state measurement window")
	flag.DurationVar(&o.outage, "outage", 60*time.Second, "how long all of etcd is down in the fault phase")
	flag.IntVar(&o.port, "port", 32379, "first of etcd's loopback ports (client ports port..port+2, peer ports port+10..port+12)")
	flag.IntVar(&o.batch, "batch", 200, "members started every 250ms")
	flag.StringVar(&o.dir, "dir", "", "where etcd's data directories go (default: the system's temp directory); /dev/shm takes the disk's fsync latency out of the figures on a machine whose disk other work shares")
	flag.BoolVar(&o.shareRing, "share-ring", true, "members share ring computations of identical inputs (one process holds them all; see ringMemo)")
	flag.IntVar(&o.etcdNice, "etcd-nice", -10, "nice value of the etcd processes (negative needs root; 0: as the simulator), so that the simulated members, which would each have a host of their own, do not starve etcd")
	flag.StringVar(&o.etcdCPUs, "etcd-cpus", "", "CPUs the etcd processes run on (taskset -c list; default: the simulator's), to starve the simulator alone: taskset -c 1 go run ./bench/fleet -etcd-cpus 0-1")
	flag.IntVar(&o.procs, "procs", 0, fmt.Sprintf("processes that run the members (0: one per %d members; 1: all in this process)", membersPerProc))
	flag.DurationVar(&o.startTimeout, "start-timeout", 8*time.Minute, "how long a fleet may take to start (every member on the first config revision)")
	flag.Float64Var(&startQuorum, "start-quorum", startQuorum, "share of the fleet that must have started within -start-timeout for the run to go on without the others (reported as stragglers)")
	flag.StringVar(&o.partial, "partial", "", "write the report so far to this file after each size")
	var memGiB float64
	flag.Float64Var(&memGiB, "mem-limit", 16, "the simulator's soft memory limit in GiB, shared by its processes (the collector runs more often near it; members' member sets grow with N², a member's memory is in docs/performance.md)")
	flag.Int64Var(&o.memLimit, "child-mem-limit", 0, "a child's soft memory limit in bytes")
	flag.BoolVar(&isChild, "child", false, "run as a child process of the simulator (-procs): members -child-first.. of -child-total, commands on stdin")
	flag.StringVar(&co.endpoints, "child-endpoints", "", "a child's etcd endpoints, comma-separated")
	flag.IntVar(&co.first, "child-first", 0, "a child's first member")
	flag.IntVar(&co.count, "child-count", 0, "a child's member count")
	flag.IntVar(&co.total, "child-total", 0, "the fleet's size, for a child")
	flag.DurationVar(&leaseTTL, "lease-ttl", leaseTTL, "the members' registration lease TTL (agents' --lease-ttl; default theirs, 10s); docs/performance.md's model of large fleets raises it with the fleet's size")
	flag.DurationVar(&keepAliveTimeout, "keepalive-timeout", keepAliveTimeout, "how long the members' etcd clients wait for a keep-alive ping's answer before they close the connection (agents: 5s); members that share two cores with etcd wait for a CPU longer than a host's agent does, and with 5s close hundreds of live connections a minute")
	flag.BoolVar(&o.verbose, "v", false, "log the members' warnings to stderr")
	flag.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (host:port) while the simulation runs")
	flag.Parse()
	for _, f := range strings.Split(sizes, ",") {
		if isChild {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			fmt.Fprintf(os.Stderr, "fleet: -n %q: %q is not a fleet size of 10 or more\n", sizes, f)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	// Thousands of members share this process: collect less often (memory
	// is plentiful) so that the collector does not take the CPU the
	// members and etcd need.
	debug.SetGCPercent(400)
	if !isChild {
		o.memLimit = int64(memGiB * (1 << 30))
	}
	if o.memLimit > 0 {
		debug.SetMemoryLimit(o.memLimit)
	}
	if o.pprof != "" {
		go func() {
			if err := http.ListenAndServe(o.pprof, nil); err != nil {
				fmt.Fprintln(os.Stderr, "fleet: pprof:", err)
			}
		}()
	}
	if isChild {
		progressPrefix = fmt.Sprintf("[members %d..%d] ", co.first, co.first+co.count-1)
		if err := runChild(o, co, o.batch); err != nil {
			fmt.Fprintln(os.Stderr, "fleet child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	bin := filepath.Join(o.bin, "etcd")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("cannot find etcd at %s (make bench-fleet builds it): %w", bin, err)
	}
	dir, err := os.MkdirTemp(o.dir, "procfleet-fleet-")
	if err != nil {
		return fmt.Errorf("cannot make a work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	level := slog.LevelError + 1
	if o.verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	rep := report{Machine: machine(), Gossipers: o.gossipers, Steady: o.steady.String(), LeaseTTLSeconds: leaseTTL.Seconds(),
		Command: "go run ./bench/fleet " + strings.Join(os.Args[1:], " ")}
	faultsAt := o.faults
	if faultsAt > 0 && !slices.Contains(o.sizes, faultsAt) {
		faultsAt = o.sizes[len(o.sizes)-1]
	}
	for _, n := range o.sizes {
		progress("fleet of %d: starting", n)
		r, err := runSize(o, bin, filepath.Join(dir, strconv.Itoa(n)), n, n == faultsAt, log)
		if err != nil {
			rep.StoppedAt = n
			rep.StoppedWhy = err.Error()
			progress("fleet of %d: stopped: %v", n, err)
			break
		}
		rep.Sizes = append(rep.Sizes, *r)
		if o.partial != "" {
			// What ran so far survives a larger size that never ends.
			if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
				_ = os.WriteFile(o.partial, append(b, '\n'), 0o644)
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// progress says on stderr where the run stands.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s"+format+"\n", append([]any{time.Now().UTC().Format("15:04:05"), progressPrefix}, args...)...)
}

// progressPrefix names a child process in its progress lines.
var progressPrefix string

// keepAliveTimeout is the members' etcdclient.Config.KeepAliveTimeout
// (-keepalive-timeout). With the agents' 5s, 1,000 members over four
// processes on two shared cores closed about 50 live connections a
// second for lack of a ping's answer in time (each process waited on the
// run queue for 2.5 CPU-seconds per second it ran), and every closed
// connection fails the calls and watches on it: the fleet spent its CPU
// reconnecting and catching up. A host's agent is not that late.
var keepAliveTimeout = 30 * time.Second

// leaseTTL is the members' cluster.Config.LeaseTTL (-lease-ttl). A member
// keeps its registration while its keep-alives (every third of it) reach
// etcd within it; members that share two cores with etcd and thousands of
// others send theirs late, their leases end in etcd, and each one's
// registration again is an event to every member: a fleet the machine
// cannot keep in time turns into a loop of registrations. A fleet of that
// size on hosts of its own may keep the agents' 10s; the model of large
// fleets (docs/performance.md) says when to raise it.
var leaseTTL = 10 * time.Second
