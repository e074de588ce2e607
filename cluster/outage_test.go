package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// TestMembersRideOutEtcdOutages runs members against a three-node etcd:
// one etcd member lost goes unnoticed (a new config revision still
// arrives), and with all of etcd down the members keep their last
// settings, then converge on a revision written after etcd returned.
func TestMembersRideOutEtcdOutages(t *testing.T) {
	ec := etcdtest.StartEtcdCluster(t, 3)
	cli := etcdtest.NewEtcdClient(t, ec.Endpoints)
	st, err := configstore.New(cli, "ct", func(b []byte) error { _, err := config.ParseCluster(b); return err })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rev, err := st.Bootstrap(ctx, doc("10MiB/s"), false)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []string{"b1", "b2"}
	var tms []*testMember
	for _, n := range nodes {
		tms = append(tms, runMember(t, testConfig(ec.Endpoints, n)))
	}
	l := &latest{u: map[string]Update{}}
	atRev := func(rev int64) func() bool {
		return func() bool {
			for _, tm := range tms {
				if u, ok := tm.last(); ok {
					l.u[tm.m.cfg.Node] = u
				}
			}
			_, _, ok := budgets(l, nodes, rev)
			return ok
		}
	}
	waitUntil(t, "members at the first revision", atRev(rev))

	// One etcd member down: writes and watches go on.
	ec.Stop(t, 0)
	set := func(capacity string, expect int64) int64 {
		t.Helper()
		var r int64
		waitUntil(t, "a config write", func() bool {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var err error
			r, err = st.Set(wctx, doc(capacity), expect)
			return err == nil
		})
		return r
	}
	rev2 := set("20MiB/s", rev)
	waitUntil(t, "members at a revision written with one etcd member down", atRev(rev2))
	ec.Restart(t, 0)
	// Both members hold a lease before etcd goes: one whose first
	// registration failed would stay connecting, with no lease to lose.
	for _, tm := range tms {
		waitUntil(t, tm.m.cfg.Node+" to be registered", func() bool {
			tm.m.mu.Lock()
			sess := tm.m.sess
			tm.m.mu.Unlock()
			info, _ := sess.Info()
			return info.Phase == session.Registered
		})
	}

	// All of etcd down for longer than the members' lease TTL (2s): the
	// members lose their leases, and keep the settings they had.
	ec.StopAll()
	for _, tm := range tms {
		waitUntil(t, tm.m.cfg.Node+" to lose its lease", func() bool {
			tm.m.mu.Lock()
			sess := tm.m.sess
			tm.m.mu.Unlock()
			info, _ := sess.Info()
			return info.Phase == session.Lost
		})
		if u, ok := tm.last(); !ok || u.Revision != rev2 || u.Assignment.Budget == 0 {
			t.Fatalf("%s lost its settings while etcd was down: %+v", tm.m.cfg.Node, u)
		}
	}
	ec.RestartAll(t)
	rev3 := set("30MiB/s", rev2)
	waitUntil(t, "members at a revision written after etcd returned", atRev(rev3))
}
