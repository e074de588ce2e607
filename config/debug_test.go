package config

import (
	"strings"
	"testing"
)

func TestDebugValidate(t *testing.T) {
	for _, c := range []struct {
		listen string
		remote bool
		want   string // "" when accepted
	}{
		{"", false, ""},
		{"127.0.0.1:6060", false, ""},
		{"127.0.0.2:6060", false, ""},
		{"[::1]:6060", false, ""},
		{"localhost:6060", false, ""},
		{"127.0.0.1:0", false, ""},
		{"0.0.0.0:6060", false, `debug.pprof_listen: "0.0.0.0:6060" is not a loopback address`},
		{":6060", false, `set debug.pprof_allow_remote: true (--pprof-allow-remote)`},
		{"[::]:6060", false, "not a loopback address"},
		{"10.1.2.3:6060", false, "not a loopback address"},
		{"node-1:6060", false, "not a loopback address"},
		{"0.0.0.0:6060", true, ""},
		{"10.1.2.3:6060", true, ""},
		{"6060", false, `debug.pprof_listen: "6060" is not accepted; want host:port`},
		{"127.0.0.1:9477", false, `debug.pprof_listen: "127.0.0.1:9477" is also listen`},
	} {
		a := DefaultAgent()
		a.Debug = Debug{PprofListen: c.listen, PprofAllowRemote: c.remote}
		err := a.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("pprof_listen %q, allow_remote %v: %v", c.listen, c.remote, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("pprof_listen %q, allow_remote %v: error %v, want one containing %q", c.listen, c.remote, err, c.want)
		}
	}
}

// Debugging surfaces are host-local: a cluster document cannot turn them
// on, anywhere.
func TestClusterCannotSetDebug(t *testing.T) {
	for _, doc := range []string{
		"agents: {debug: {pprof_listen: '0.0.0.0:6060'}}\n",
		"overrides:\n  - match: {nodes: [h1]}\n    agents: {debug: {pprof_allow_remote: true}}\n",
	} {
		if _, err := ParseCluster([]byte(twoUpstreams + doc)); err == nil || !strings.Contains(err.Error(), "unknown key debug") {
			t.Errorf("%q: %v; want unknown key debug", doc, err)
		}
	}
}
