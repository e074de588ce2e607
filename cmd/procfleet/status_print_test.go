package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStatusCounts checks the counts of status' first line: "1 agent",
// not "1 agents" (as before), and "0 relays", "2 agents".
func TestStatusCounts(t *testing.T) {
	f := func(agents, relays int, want string) {
		t.Helper()
		s := clusterStatus{Cluster: "c", ConfigRevision: 7}
		for range agents {
			s.Agents = append(s.Agents, agentStatus{Node: "a"})
		}
		for range relays {
			s.Relays = append(s.Relays, agentStatus{Node: "r"})
		}
		var out bytes.Buffer
		printStatus(&out, s)
		if first, _, _ := strings.Cut(out.String(), "\n"); first != want {
			t.Errorf("first line %q, want %q", first, want)
		}
	}
	f(1, 0, "cluster c, config revision 7, 1 agent, 0 relays")
	f(2, 1, "cluster c, config revision 7, 2 agents, 1 relay")
	f(0, 2, "cluster c, config revision 7, 0 agents, 2 relays")
}

// TestDevHelpShowsItsDefaults checks that dev --help shows the gossip
// address dev uses, 127.0.0.1:0, not the agent's 0.0.0.0:7946 (as before).
func TestDevHelpShowsItsDefaults(t *testing.T) {
	out, stderr, code := run(t, "dev", "--help")
	if code != 0 {
		t.Fatalf("dev --help: exit %d: %s", code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "--gossip-listen") {
			if !strings.Contains(line, `(default "127.0.0.1:0")`) {
				t.Errorf("dev --help: %s; want the default 127.0.0.1:0", strings.TrimSpace(line))
			}
			return
		}
	}
	t.Fatalf("dev --help lacks --gossip-listen:\n%s", out)
}
