package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/etcdclient"
	"github.com/procfleet/procfleet/config"
)

// runSize simulates a fleet of n members on a fresh etcd cluster under
// dir: start, steady state, a config change, a rolling restart of a
// tenth, and the faults when faults is set.
func runSize(o options, bin, dir string, n int, faults bool, log *slog.Logger) (*sizeReport, error) {
	r := &sizeReport{Members: n}
	cost, err := ringCost(n)
	if err != nil {
		return nil, err
	}
	r.RingComputeMs = ms(cost)
	progress("fleet of %d: one ring computation takes %s here", n, cost)
	ec, err := startEtcd(bin, dir, o.port, o.etcdNice, o.etcdCPUs)
	if err != nil {
		return nil, err
	}
	defer ec.stop()
	cli, err := etcdclient.New(etcdclient.Config{Endpoints: ec.endpoints()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	store, err := configstore.New(cli, clusterName, func(b []byte) error { _, err := config.ParseCluster(b); return err })
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	rev, err := store.Bootstrap(ctx, clusterDoc(100), false)
	if err != nil {
		return nil, fmt.Errorf("cannot write the cluster document: %w", err)
	}
	procs := o.procsFor(n)
	r.Processes = procs
	var f simFleet
	if procs <= 1 {
		lf := &fleet{endpoints: ec.endpoints(), log: log}
		if o.shareRing {
			lf.memo = &ringMemo{}
		}
		f = lf
	} else {
		pf, err := startChildren(o, ec.endpoints(), n, procs)
		if err != nil {
			return nil, err
		}
		f = pf
	}
	defer f.stopAll()
	if o.shareRing {
		// Before stopAll (deferred first, run last): children report their
		// counts while they run.
		defer func() { r.RingComputations, r.RingShared = f.ringCounts() }()
	}
	self0, _ := simUsage(f)
	started, err := f.start(n, o.gossipers, o.batch, rev, o.startTimeout)
	if err != nil {
		return nil, err
	}
	self1, _ := simUsage(f)
	r.Start = startReport{Seconds: round(started.Seconds()), SimulatorCPUSeconds: round(self1 - self0)}
	progress("fleet of %d: started in %s; settling", n, started.Round(time.Second))
	settle(f)

	progress("fleet of %d: steady state for %s", n, o.steady)
	s0 := ec.sample()
	p0, _ := simUsage(f)
	time.Sleep(o.steady)
	s1 := ec.sample()
	p1, rss := simUsage(f)
	r.Steady = steadyOf(ec, s0, s1)
	r.Steady.SimulatorCores = round((p1 - p0) / s1.at.Sub(s0.at).Seconds())
	r.Steady.SimulatorRSSMiB = round(float64(rss) / (1 << 20))

	progress("fleet of %d: config change", n)
	if r.ConfigChange, rev, err = configChange(store, f, rev, 101); err != nil {
		r.Error = err.Error()
		return r, nil
	}

	progress("fleet of %d: rolling restart of %d members", n, n/10)
	if r.RollingRestart, err = rollingRestart(f, ec, n/10, o.steady, cost); err != nil {
		r.Error = err.Error()
		return r, nil
	}
	if faults {
		fr, err := runFaults(o, ec, cli, store, f, rev)
		if err != nil {
			fr.Error = err.Error()
			progress("fleet of %d: faults: %v", n, err)
		}
		r.Faults = fr
	}
	progress("fleet of %d: done; stopping", n)
	return r, nil
}

// settle waits until the fleet's recomputes stop (fewer than one per
// member over 3s) or a minute passed: the start's churn is over.
func settle(f simFleet) {
	total := func() uint64 {
		var t uint64
		for _, s := range stats(f) {
			t += s.Recomputes
		}
		return t
	}
	prev := total()
	for range 20 {
		time.Sleep(3 * time.Second)
		cur := total()
		if cur-prev < uint64(f.size()) {
			return
		}
		prev = cur
	}
}

// steadyOf turns two samples of the etcd cluster into the steady-state
// figures.
func steadyOf(ec *etcdCluster, s0, s1 sample) steadyReport {
	secs := s1.at.Sub(s0.at).Seconds()
	rate := func(name string) float64 { return (s1.metrics[name] - s0.metrics[name]) / secs }
	st := steadyReport{
		EtcdCores:         round((s1.cpu - s0.cpu) / secs),
		RequestsPerSecond: round(rate("grpc_server_msg_received_total")),
		WatchEventsPerSec: round(rate("etcd_debugging_mvcc_events_total")),
		// Every node applies every put: the cluster's puts are a third.
		PutsPerSecond:      round(rate("etcd_mvcc_put_total") / float64(len(ec.nodes))),
		ByMethodPerSecond:  map[string]float64{},
		DBBytesPerNode:     s1.metrics["etcd_mvcc_db_total_size_in_bytes"] / float64(len(ec.nodes)),
		DBInUseBytesPerNod: s1.metrics["etcd_mvcc_db_total_size_in_use_in_bytes"] / float64(len(ec.nodes)),
		Watchers:           s1.metrics["etcd_debugging_mvcc_watcher_total"],
	}
	for k := range s1.metrics {
		const p = "grpc_server_msg_received_total/"
		if len(k) > len(p) && k[:len(p)] == p {
			if v := rate(k); v >= 0.5 {
				st.ByMethodPerSecond[k[len(p):]] = round(v)
			}
		}
	}
	for _, n := range ec.nodes {
		st.EtcdRSSMiB = append(st.EtcdRSSMiB, round(float64(n.rss())/(1<<20)))
	}
	return st
}

// configChange writes the cluster document with upstream capacity
// capacityMiB over revision rev and measures how long each member takes
// to hand out the new revision.
func configChange(store *configstore.Store, f simFleet, rev int64, capacityMiB int) (latency, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var nrev int64
	var err error
	for {
		// etcd answers "leader changed" for a moment after a fault.
		if nrev, err = store.Set(ctx, clusterDoc(capacityMiB), rev); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return latency{}, rev, fmt.Errorf("cannot write config revision after %d: %w", rev, err)
	}
	delays, err := waitApplied(f, nrev, start, 2*time.Minute)
	l := latencyOf(delays)
	l.Applied = len(delays)
	if err != nil {
		// Stragglers are a figure, not the end of the run.
		l.NotApplied = err.Error()
		progress("%v", err)
	}
	return l, nrev, nil
}

// rollingRestart stops and starts again k members, spread over the
// fleet, paced to take about window, and reports what the others went
// through: membership events, recomputes, and the CPU they would spend
// on a host of their own (recomputes times cost).
func rollingRestart(f simFleet, ec *etcdCluster, k int, window, cost time.Duration) (restartReport, error) {
	n := f.size()
	every := n / k
	var idx []int
	for i := every / 2; i < n && len(idx) < k; i += every {
		idx = append(idx, i)
	}
	restarted := map[int]bool{}
	for _, i := range idx {
		restarted[i] = true
	}
	pace := window / time.Duration(k)
	st0 := stats(f)
	s0 := ec.sample()
	p0, _ := simUsage(f)
	begin := time.Now()
	// Each restart on a goroutine of its own, started at the pace: a
	// member that takes a while to stop (a gossip leaving) does not hold
	// back the next.
	var wg sync.WaitGroup
	errs := make(chan error, len(idx))
	for j, i := range idx {
		if d := time.Until(begin.Add(time.Duration(j) * pace)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			if err := f.restart(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return restartReport{}, err
	}
	took := time.Since(begin)
	time.Sleep(2 * time.Second) // the last coalesced recomputes
	st1 := stats(f)
	s1 := ec.sample()
	p1, _ := simUsage(f)
	secs := s1.at.Sub(s0.at).Seconds()
	var events, recomputes []float64
	var wall []time.Duration
	for i := range st1 {
		if restarted[i] {
			continue
		}
		events = append(events, float64(st1[i].MemberEvents-st0[i].MemberEvents))
		recomputes = append(recomputes, float64(st1[i].Recomputes-st0[i].Recomputes))
		wall = append(wall, st1[i].RecomputeTime-st0[i].RecomputeTime)
	}
	rr := restartReport{
		Restarted: k, Seconds: round(took.Seconds()), WindowSeconds: round(secs),
		EventsPerMember:          dist(events),
		RecomputesPerMember:      dist(recomputes),
		RecomputeWallMsPerMember: latencyOf(wall),
		EtcdCores:                round((s1.cpu - s0.cpu) / secs),
		EtcdWatchEventsPerSec:    round((s1.metrics["etcd_debugging_mvcc_events_total"] - s0.metrics["etcd_debugging_mvcc_events_total"]) / secs),
		EtcdRequestsPerSecond:    round((s1.metrics["grpc_server_msg_received_total"] - s0.metrics["grpc_server_msg_received_total"]) / secs),
		SimulatorCores:           round((p1 - p0) / secs),
	}
	// On a host of its own a member spends about cost per recompute; in
	// the simulator the wall time above also holds the wait for one of
	// the two cores every member shares.
	rr.MemberCoreFractionP99 = round(rr.RecomputesPerMember.P99*cost.Seconds()/secs*1e4) / 1e4
	rr.MemberCoreFractionMax = round(rr.RecomputesPerMember.Max*cost.Seconds()/secs*1e4) / 1e4
	return rr, nil
}

// machine describes the host.
func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s/%s", host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
}

// leaderOf returns the index in ec.nodes of etcd's leader and its member
// ID, -1 when none answers.
func leaderOf(ec *etcdCluster, cli *clientv3.Client) (int, uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range ec.nodes {
		if n.cmd == nil {
			continue
		}
		st, err := cli.Status(ctx, n.endpoint())
		if err == nil && st.Leader == st.Header.MemberId {
			return i, st.Leader
		}
	}
	return -1, 0
}

// memberIDs returns the etcd member ID of each node in ec.nodes order.
func memberIDs(ec *etcdCluster, cli *clientv3.Client) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []uint64
	for _, n := range ec.nodes {
		st, err := cli.Status(ctx, n.endpoint())
		if err != nil {
			return nil, fmt.Errorf("cannot read the status of %s: %w", n.name, err)
		}
		ids = append(ids, st.Header.MemberId)
	}
	return ids, nil
}

func registrations(f simFleet) []int {
	st := stats(f)
	out := make([]int, len(st))
	for i, s := range st {
		out[i] = s.Registrations
	}
	return out
}

// reregistered counts the members whose registrations grew since before.
func reregistered(before []int, f simFleet) int {
	n := 0
	for i, s := range stats(f) {
		if s.Registrations > before[i] {
			n++
		}
	}
	return n
}

// simUsage returns the simulator's CPU seconds so far and its resident
// memory, over all its processes.
func simUsage(f simFleet) (cpu float64, rss int64) {
	for _, pid := range f.pids() {
		c, r, err := procStat(pid)
		if err == nil {
			cpu += c
			rss += r
		}
	}
	return cpu, rss
}
