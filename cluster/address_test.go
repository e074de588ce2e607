package cluster

import (
	"context"
	"testing"

	"github.com/procfleet/procfleet/cluster/session"
	"github.com/procfleet/procfleet/internal/etcdtest"
)

func TestHTTPAddress(t *testing.T) {
	for _, tc := range []struct{ listen, gossip, want string }{
		{"127.0.0.1:9477", "10.0.0.5:7946", "127.0.0.1:9477"},
		{"10.0.0.5:9478", "10.0.0.5:7946", "10.0.0.5:9478"},
		{"0.0.0.0:9478", "10.0.0.5:7946", "10.0.0.5:9478"},
		{"[::]:9478", "10.0.0.5:7946", "10.0.0.5:9478"},
		{":9478", "[fd00::5]:7946", "[fd00::5]:9478"},
		{"relay.example:9478", "10.0.0.5:7946", "relay.example:9478"},
		{"0.0.0.0:9478", "", "0.0.0.0:9478"}, // no gossip: the port still tells something
		{"", "10.0.0.5:7946", ""},
	} {
		if got := httpAddress(tc.listen, tc.gossip); got != tc.want {
			t.Errorf("httpAddress(%q, %q) = %q, want %q", tc.listen, tc.gossip, got, tc.want)
		}
	}
}

// TestMemberKeyHasHTTP checks that a member registers its HTTP address
// beside its gossip's, a wildcard host replaced by the gossip's.
func TestMemberKeyHasHTTP(t *testing.T) {
	e := etcdtest.StartEtcd(t)
	cli := etcdtest.NewEtcdClient(t, e.Endpoints)
	bootstrap(t, cli, []byte(oneUpstream))
	cfg := testConfig(e.Endpoints, "a1")
	cfg.Address = "0.0.0.0:19477"
	runMember(t, cfg)
	var m session.Member
	waitUntil(t, "a1's member key", func() bool {
		resp, err := cli.Get(context.Background(), "/procfleet/ct/members/agents/a1")
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		m, err = session.ParseMember(resp.Kvs[0].Value)
		return err == nil
	})
	if want := httpAddress("0.0.0.0:19477", m.Address); m.HTTP != want || m.HTTP == "0.0.0.0:19477" {
		t.Errorf("member key http = %q (gossip %q); want %q", m.HTTP, m.Address, want)
	}
}
