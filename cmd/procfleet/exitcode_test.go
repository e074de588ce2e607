package main

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// exitCase is one command line and the exit code it must give: 2 for
// usage and invalid input, 1 for a runtime failure.
type exitCase struct {
	args []string
	code int
	want string // in stderr
}

// TestExitCodes runs the built binary over every command with a usage
// error, an invalid input where the command reads one, and a runtime
// failure where the command has one, and checks one convention: 2 for
// usage and invalid input (bad flags, missing or extra arguments, an
// invalid config file or document), 1 for runtime failures. Before, cobra's
// own errors, a bad agent config and a parent command without its
// subcommand exited 1 or 0. Every command of the binary must be in the
// table, so that a new command is checked too.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	badAgent := filepath.Join(dir, "agent.yaml")
	writeFile(t, badAgent, "shipp: {}\n")
	badCluster := filepath.Join(dir, "cluster.yaml")
	writeFile(t, badCluster, "upstreams: []\n")
	goodCluster := filepath.Join(dir, "good.yaml")
	writeFile(t, goodCluster, rolloutDoc(""))
	missing := filepath.Join(dir, "missing.yaml")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	busy := taken.Addr().String()
	// An etcd that is not there: a runtime failure within a second.
	noEtcd := []string{"--etcd=http://127.0.0.1:1", "--etcd-dial-timeout=1s", "--cluster=c"}
	with := func(args []string, more ...string) []string { return append(slices.Clone(args), more...) }
	usage := func(args ...string) exitCase { return exitCase{args, 2, ""} }
	badFlag := func(cmd ...string) exitCase {
		return exitCase{with(cmd, "--no-such-flag"), 2, "unknown flag: --no-such-flag"}
	}
	unreachable := func(cmd ...string) exitCase {
		return exitCase{with(cmd, noEtcd...), 1, "cannot reach etcd at http://127.0.0.1:1"}
	}
	upstream := "--upstream=http://127.0.0.1:9/api/v1/import/prometheus"

	table := map[string][]exitCase{
		"procfleet": {usage(), {[]string{"nosuch"}, 2, `unknown command "nosuch"`}, badFlag()},
		"procfleet scan": {badFlag("scan"), {[]string{"scan", "extra"}, 2, `unknown command "extra"`},
			{[]string{"scan", "--config", badAgent}, 2, "unknown key shipp"},
			{[]string{"scan", "--config", missing}, 2, "missing.yaml"},
			{[]string{"scan", "--procfs-root", dir, "--sysfs-root", dir}, 1, "every generator failed"}},
		"procfleet agent": {badFlag("agent"), {[]string{"agent", "--config", badAgent}, 2, "unknown key shipp"},
			{[]string{"agent", "--config", missing}, 2, "missing.yaml"},
			{[]string{"agent", "--etcd=http://127.0.0.1:1"}, 2, "--cluster is required"},
			{[]string{"agent", upstream, "--listen", busy}, 1, "address already in use"}},
		"procfleet relay": {badFlag("relay"), {[]string{"relay", "--config", badAgent}, 2, "unknown key shipp"},
			{[]string{"relay", "--data-dir", dir}, 2, "ship.upstreams: empty"},
			{[]string{"relay", upstream, "--data-dir", filepath.Join(dir, "relay"), "--listen", busy}, 1, "address already in use"}},
		"procfleet dev": {badFlag("dev"), {[]string{"dev", "extra"}, 2, `unknown command "extra"`},
			{[]string{"dev", "--config", badAgent}, 2, "unknown key shipp"},
			{[]string{"dev", "--etcd-listen", busy, "--data-dir", filepath.Join(dir, "dev")}, 1, "cannot start embedded etcd"}},
		"procfleet cluster": {usage("cluster"), {[]string{"cluster", "nosuch"}, 2, `unknown command "nosuch"`}, badFlag("cluster")},
		"procfleet cluster bootstrap": {badFlag("cluster", "bootstrap"),
			{[]string{"cluster", "bootstrap", "--upstream=http://x:1/y"}, 2, "--cluster is required"},
			{with([]string{"cluster", "bootstrap", "--config", badCluster}, noEtcd...), 2, "upstreams: empty"},
			{with([]string{"cluster", "bootstrap", "--config", missing}, noEtcd...), 2, "missing.yaml"},
			unreachable("cluster", "bootstrap", "--config", goodCluster)},
		"procfleet config": {usage("config"), {[]string{"config", "nosuch"}, 2, `unknown command "nosuch"`}, badFlag("config")},
		"procfleet config get": {badFlag("config", "get"), {[]string{"config", "get", "--revision=x"}, 2, "--revision"},
			unreachable("config", "get")},
		"procfleet config set": {badFlag("config", "set"), {[]string{"config", "set"}, 2, "--file is required"},
			{with([]string{"config", "set", "-f", badCluster}, noEtcd...), 2, "upstreams: empty"},
			{with([]string{"config", "set", "-f", goodCluster, "--wait=soon"}, noEtcd...), 2, "--wait"},
			unreachable("config", "set", "-f", goodCluster)},
		"procfleet config edit": {badFlag("config", "edit"), {[]string{"config", "edit", "extra"}, 2, `unknown command "extra"`},
			unreachable("config", "edit")},
		"procfleet config validate": {badFlag("config", "validate"), {[]string{"config", "validate"}, 2, "--file is required"},
			{[]string{"config", "validate", "-f", badCluster}, 2, "upstreams: empty"},
			{[]string{"config", "validate", "-f", missing}, 2, "missing.yaml"},
			unreachable("config", "validate", "-f", goodCluster)},
		"procfleet config history": {badFlag("config", "history"), {[]string{"config", "history", "extra"}, 2, `unknown command "extra"`},
			unreachable("config", "history")},
		"procfleet config diff": {badFlag("config", "diff"), {[]string{"config", "diff"}, 2, "accepts between 1 and 2 arg(s)"},
			{with([]string{"config", "diff", "x"}, noEtcd...), 2, "want a positive number"},
			unreachable("config", "diff", "1")},
		"procfleet config rollback": {badFlag("config", "rollback"), {[]string{"config", "rollback"}, 2, "accepts 1 arg(s), received 0"},
			{with([]string{"config", "rollback", "x"}, noEtcd...), 2, "want a positive number"},
			unreachable("config", "rollback", "1")},
		"procfleet status": {badFlag("status"), {with([]string{"status", "-o", "yaml"}, noEtcd...), 2, "want table or json"},
			unreachable("status")},
		"procfleet targets": {badFlag("targets"), {with([]string{"targets", "-o", "yaml"}, noEtcd...), 2, "want table or json"},
			unreachable("targets")},
		"procfleet ui": {badFlag("ui"), {[]string{"ui", "extra"}, 2, `unknown command "extra"`},
			{[]string{"ui", "--etcd=http://127.0.0.1:1"}, 2, "--cluster is required"},
			unreachable("ui")},
		"procfleet install": {usage("install"), {[]string{"install", "nosuch"}, 2, `unknown command "nosuch"`}},
		"procfleet install agent": {badFlag("install", "agent"), {[]string{"install", "agent", "--etcd=http://x:1"}, 2, "--cluster"},
			{[]string{"install", "agent", upstream, "--root", "/dev/null/x"}, 1, "not a directory"}},
		"procfleet install relay": {badFlag("install", "relay"), {[]string{"install", "relay", "--etcd=http://x:1"}, 2, "--cluster"},
			{[]string{"install", "relay", upstream, "--root", "/dev/null/x"}, 1, "not a directory"}},
		"procfleet uninstall": {usage("uninstall"), {[]string{"uninstall", "nosuch"}, 2, `unknown command "nosuch"`}},
		"procfleet uninstall agent": {badFlag("uninstall", "agent"), {[]string{"uninstall", "agent", "extra"}, 2, `unknown command "extra"`},
			{[]string{"uninstall", "agent", "--root", "/dev/null/x"}, 1, "not a directory"}},
		"procfleet uninstall relay": {badFlag("uninstall", "relay"), {[]string{"uninstall", "relay", "extra"}, 2, `unknown command "extra"`},
			{[]string{"uninstall", "relay", "--root", "/dev/null/x"}, 1, "not a directory"}},
		"procfleet help":                  {{[]string{"help", "nosuch"}, 2, `unknown help topic "nosuch"`}, {[]string{"help", "config", "set"}, 0, ""}},
		"procfleet completion":            {usage("completion"), {[]string{"completion", "nosuch"}, 2, `unknown command "nosuch"`}},
		"procfleet completion bash":       {{[]string{"completion", "bash", "extra"}, 2, `unknown command "extra"`}},
		"procfleet completion zsh":        {{[]string{"completion", "zsh", "extra"}, 2, `unknown command "extra"`}},
		"procfleet completion fish":       {{[]string{"completion", "fish", "extra"}, 2, `unknown command "extra"`}},
		"procfleet completion powershell": {{[]string{"completion", "powershell", "extra"}, 2, `unknown command "extra"`}},
	}

	var missed []string
	walk(newRoot(), func(c *cobra.Command) {
		if _, ok := table[c.CommandPath()]; !ok {
			missed = append(missed, c.CommandPath())
		}
	})
	if len(missed) > 0 {
		t.Errorf("commands without exit-code cases: %s; add them to the table", strings.Join(missed, ", "))
	}
	for path, cases := range table {
		t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				_, stderr, code := run(t, c.args...)
				if code != c.code || !strings.Contains(stderr, c.want) {
					t.Errorf("procfleet %s: exit %d, stderr %q; want exit %d with %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
				}
			}
		})
	}
}
