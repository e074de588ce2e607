package cluster

import (
	"testing"

	"github.com/procfleet/procfleet/config"
)

// TestLeaveBeforeListedLive: a member stopped right after its start (Ctrl-C
// on procfleet dev) may have computed its targets before etcd's watch
// listed it live, that is without itself. Leaving takes it out of the
// agents again, which leaves the inputs as they were: the evaluation that
// follows must still see that the member scrapes nothing and let Leave
// return, rather than wait out its timeout.
func TestLeaveBeforeListedLive(t *testing.T) {
	cfg := testConfig([]string{"http://127.0.0.1:1"}, "early")
	cfg.NoGossip = true
	m, err := New(cfg, config.DefaultAgent(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := m.scrape
	ls := &loopState{view: newView(cfg.Node), cluster: &config.Cluster{}, rev: 3, live: members{}, gotLive: true}
	r.evaluate(ls, nil)
	m.mu.Lock()
	computed := m.status.Targets != nil
	m.mu.Unlock()
	if !computed {
		t.Fatal("the member did not compute its targets")
	}
	r.leaving.Store(true)
	r.evaluate(ls, nil)
	select {
	case <-r.left:
	default:
		t.Fatal("leaving, the member scrapes nothing, yet Leave is not told it may return")
	}
}
