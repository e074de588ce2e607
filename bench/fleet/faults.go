package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/procfleet/procfleet/cluster/configstore"
)

// runFaults moves etcd's leader, kills one etcd member and restarts it,
// then stops all of etcd for o.outage and starts it again, measuring what
// the fleet does; rev is the config revision the fleet runs on.
func runFaults(o options, ec *etcdCluster, cli *clientv3.Client, store *configstore.Store, f simFleet, rev int64) (*faultReport, error) {
	fr := &faultReport{}
	ids, err := memberIDs(ec, cli)
	if err != nil {
		return fr, err
	}

	// The leader moved to another member.
	progress("faults: moving etcd's leader")
	li, _ := leaderOf(ec, cli)
	if li < 0 {
		return fr, fmt.Errorf("no etcd leader to move")
	}
	target := (li + 1) % len(ec.nodes)
	before := registrations(f)
	lcli, err := clientv3.New(clientv3.Config{Endpoints: []string{ec.nodes[li].endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fr, fmt.Errorf("cannot connect to the leader %s: %w", ec.nodes[li].name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = lcli.MoveLeader(ctx, ids[target])
	cancel()
	lcli.Close()
	if err != nil {
		return fr, fmt.Errorf("cannot move etcd's leader from %s to %s: %w", ec.nodes[li].name, ec.nodes[target].name, err)
	}
	fr.LeaderMoved.ConfigChange, rev, err = configChange(store, f, rev, 102)
	if err != nil {
		return fr, fmt.Errorf("after the leader moved: %w", err)
	}
	fr.LeaderMoved.Reregistered = reregistered(before, f)

	// The (new) leader killed and restarted.
	li, _ = leaderOf(ec, cli)
	if li < 0 {
		return fr, fmt.Errorf("no etcd leader after the move")
	}
	victim := ec.nodes[li]
	progress("faults: killing etcd member %s (the leader)", victim.name)
	before = registrations(f)
	victim.kill()
	fr.OneKilled.Node = victim.name + " (the leader)"
	fr.OneKilled.ConfigChange, rev, err = configChange(store, f, rev, 103)
	if err != nil {
		return fr, fmt.Errorf("with %s down: %w", victim.name, err)
	}
	start := time.Now()
	if err := victim.start(ec.bin, ec.nice, ec.cpus); err != nil {
		return fr, err
	}
	if err := ec.waitHealthy(60 * time.Second); err != nil {
		return fr, err
	}
	fr.OneKilled.RejoinSeconds = round(time.Since(start).Seconds())
	time.Sleep(5 * time.Second)
	fr.OneKilled.Reregistered = reregistered(before, f)

	// All of etcd down for o.outage.
	progress("faults: all of etcd down for %s", o.outage)
	kept := f.states()
	before = registrations(f)
	for _, n := range ec.nodes {
		n.kill()
	}
	time.Sleep(o.outage)
	for i, st := range f.states() {
		if slices.Equal(st.Upstreams, kept[i].Upstreams) {
			if st.Updates != kept[i].Updates {
				// Budgets from the membership events the member took in
				// before the outage and evaluated during it (recomputes
				// are spaced): same upstreams, from etcd's last word.
				fr.AllDown.UpdatedSameUpstreams++
			}
			continue
		}
		{
			fr.AllDown.ChangedDuringOutage++
			progress("faults: %s (gossip %v) changed settings with etcd down: upstreams %v -> %v, revision %d, %d updates",
				f.node(i), st.Gossip, kept[i].Upstreams, st.Upstreams, st.Revision, st.Updates-kept[i].Updates)
		}
	}
	fr.AllDown.OutageSeconds = o.outage.Seconds()
	progress("faults: starting etcd again")
	for _, n := range ec.nodes {
		if err := n.start(ec.bin, ec.nice, ec.cpus); err != nil {
			return fr, err
		}
	}
	back := time.Now()
	// etcd's own return, before the members' (measured after them, it
	// was the members' wait, up to its 3-minute limit).
	if err := ec.waitHealthy(60 * time.Second); err != nil {
		return fr, err
	}
	fr.AllDown.EtcdHealthySeconds = round(time.Since(back).Seconds())
	// When each member registered again, counted from etcd's start (the
	// members' counters are polled every 50ms).
	at := make([]time.Duration, f.size())
	pending := f.size()
	deadline := back.Add(3 * time.Minute)
	for pending > 0 && time.Now().Before(deadline) {
		for i := range at {
			if at[i] != 0 {
				continue
			}
			if t, ok := f.registeredAt(i, before[i]); ok {
				at[i] = max(t.Sub(back), time.Nanosecond)
				pending--
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var times, spreadT, atOnceT []time.Duration
	for i, d := range at {
		if d > 0 {
			times = append(times, d)
			if noSpread(f.node(i)) {
				atOnceT = append(atOnceT, d)
			} else {
				spreadT = append(spreadT, d)
			}
		}
	}
	fr.AllDown.Reregistered = len(times)
	fr.AllDown.NotReregistered = pending
	fr.AllDown.Spread = spreadOf(times)
	fr.AllDown.SpreadHalf = spreadOf(spreadT)
	fr.AllDown.NoSpreadHalf = spreadOf(atOnceT)
	fr.AllDown.ConfigChange, _, err = configChange(store, f, rev, 104)
	if err != nil {
		return fr, fmt.Errorf("after all of etcd came back: %w", err)
	}
	return fr, nil
}

// spreadOf summarises when the members registered again: the quantiles
// of the delays and the most in any one second.
func spreadOf(ts []time.Duration) spread {
	if len(ts) == 0 {
		return spread{}
	}
	slices.Sort(ts)
	perSecond := map[int]int{}
	for _, t := range ts {
		perSecond[int(t/time.Second)]++
	}
	sp := spread{
		FirstSeconds: round(ts[0].Seconds()), P50Seconds: round(percentile(ts, 0.5).Seconds()),
		P99Seconds: round(percentile(ts, 0.99).Seconds()), LastSeconds: round(ts[len(ts)-1].Seconds()),
	}
	last := int(ts[len(ts)-1] / time.Second)
	for s := 0; s <= last; s++ {
		sp.PerSecond = append(sp.PerSecond, perSecond[s])
		sp.MaxPerSecond = max(sp.MaxPerSecond, perSecond[s])
	}
	return sp
}
