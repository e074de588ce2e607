package cluster

import (
	"context"
	"strings"
	"testing"

	"github.com/procfleet/procfleet/cluster/keys"
	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

// TestNoGossip runs two members without gossip: each registers with no
// gossip address, hands out settings computed with both (the ring sees
// the other through etcd alone), says in its status why no gossip runs,
// and counts in Stats the membership events and registrations it saw.
func TestNoGossip(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := e.Client(t)
	bootstrap(t, cli, []byte(oneUpstream))
	cfgA := testConfig(e.Endpoints, "quiet-a")
	cfgA.NoGossip = true
	a := runMember(t, cfgA)
	first := a.waitUpdate("a's first settings", func(u Update) bool { return u.Revision > 0 })
	before := a.m.Stats()
	if before.ConfigSeen != first.Revision {
		t.Errorf("a's stats say config revision %d seen; its settings are of revision %d", before.ConfigSeen, first.Revision)
	}
	cfgB := testConfig(e.Endpoints, "quiet-b")
	cfgB.NoGossip = true
	b := runMember(t, cfgB)
	b.waitUpdate("b's first settings", func(u Update) bool { return u.Revision > 0 })
	waitUntil(t, "a counts b's registration", func() bool {
		a.m.mu.Lock()
		defer a.m.mu.Unlock()
		return a.m.live[keys.Agent] == 2
	})
	if got := a.m.Stats().MemberEvents; got <= before.MemberEvents {
		t.Errorf("a counted %d membership events after b registered, %d before; want more", got, before.MemberEvents)
	}
	st := a.m.Stats()
	if st.Registrations != 1 || st.Recomputes == 0 {
		t.Errorf("a's stats %+v; want 1 registration and some recomputes", st)
	}
	if got := a.status().Gossip; !strings.Contains(got, "disabled") {
		t.Errorf("a's status says gossip %q; want it disabled", got)
	}
	space, err := keys.New("ct")
	if err != nil {
		t.Fatal(err)
	}
	key, err := space.Member(keys.Agent, "quiet-b")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("b's member key %s: %v, %d keys", key, err, len(resp.Kvs))
	}
	m, err := session.ParseMember(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if m.Address != "" {
		t.Errorf("b registered gossip address %q; want none", m.Address)
	}
}
