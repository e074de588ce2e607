//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// systemdImage is `make systemd-image`: Debian with systemd as PID 1.
	systemdImage = "procfleet-systemd:dev"
	systemdNode  = "systemd-host"
	agentService = "procfleet-agent"
	relayService = "procfleet-relay"
	// upgradeVersion is the version of the binary the upgrade installs.
	upgradeVersion = "e2e-upgrade"
	// capsAgent is the CapEff the agent's unit grants: CAP_DAC_READ_SEARCH
	// (bit 2) and CAP_SYS_PTRACE (bit 19).
	capsAgent = 1<<2 | 1<<19
)

// maxExposure bounds the "Overall exposure level" of systemd-analyze
// security (0 to 10, lower is safer) per unit, so that a hardening
// directive dropped from a unit fails the test. With systemd 252 (Debian
// 12, the suite `make systemd-image` pins) the agent scores 2.1 and the
// relay 1.4, the agent's two capabilities making the difference; dropping
// any one of ProtectSystem=, ProtectHome=, PrivateTmp=, NoNewPrivileges=,
// ProtectKernelTunables= or SystemCallArchitectures= from the agent's unit
// raises it to 2.3, RestrictNamespaces= to 2.8, SystemCallFilter= to 3.6.
// A deliberate relaxation raises the bound in the same change.
var maxExposure = map[string]float64{agentService: 2.2, relayService: 1.5}

// systemdContainer is named after the compose project (the Makefile's
// teardown removes it by that name), so that a left-over one removed at
// the start is this checkout's own.
var systemdContainer = project + "-e2e-systemd"

// agentInstall is the install command line of the agent, after the binary.
var agentInstall = []string{"install", "agent", "--etcd", "http://etcd1:2379", "--cluster", clusterID, "--node", systemdNode}

// TestSystemd installs, re-installs, upgrades and uninstalls the agent (and
// a standalone relay) with `procfleet install` in a container whose PID 1
// is systemd, joined to the compose cluster: the units run under a real
// systemd with their whole sandbox. It leaves the cluster as it found it.
// Its file sorts after compose_test.go and faults_test.go, so `make e2e`
// runs it last.
func TestSystemd(t *testing.T) {
	if _, err := run(30*time.Second, "docker", "info"); err != nil {
		t.Skipf("Docker is not available, skipping the systemd tests: %v", err)
	}
	if _, err := run(30*time.Second, "docker", "image", "inspect", systemdImage); err != nil {
		t.Fatalf("no image %s: run `make systemd-image` (make e2e does): %v", systemdImage, err)
	}
	bin, err := filepath.Abs("../build/image/procfleet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no static binary: run `make image` (make e2e does): %v", err)
	}
	// TestCompose builds the CLI into its own TempDir, gone once it ends.
	if _, err := os.Stat(procfleetBin); procfleetBin == "" || err != nil {
		if err := buildCLI(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	upgrade := buildUpgrade(t)
	t.Logf("cluster complete after %v", waitComplete(t, 2*time.Minute).Round(time.Millisecond))

	c := startSystemd(t)
	docker(t, "cp", bin, c.name+":/root/procfleet")
	docker(t, "cp", upgrade, c.name+":/root/procfleet-upgrade")
	steps := []struct {
		name string
		f    func(*testing.T, sdContainer)
	}{
		{"Install", testSystemdInstall},
		{"Reinstall", testSystemdReinstall},
		{"Security", testSystemdSecurity},
		{"Upgrade", testSystemdUpgrade},
		{"Relay", testSystemdRelay},
		{"Uninstall", testSystemdUninstall},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.f(t, c) }) {
			return // every step starts from where the one before left off
		}
	}
}

// buildUpgrade builds the static binary again as make image does (-tags
// nodev) with another version, so that its bytes differ from
// build/image/procfleet.
func buildUpgrade(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "procfleet")
	_, err := run(5*time.Minute, "env", "CGO_ENABLED=0", "go", "build", "-tags", "nodev", "-trimpath",
		"-ldflags", "-s -w -X main.version="+upgradeVersion, "-o", out, "github.com/procfleet/procfleet/cmd/procfleet")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reportLine is the start of a line of install's report: the verb padded
// as install pads it, then what it did.
func reportLine(verb, what string) string { return fmt.Sprintf("%-14s %s", verb, what) }

// sdContainer is the container that runs systemd.
type sdContainer struct{ name string }

// exec runs a command in the container and returns its stdout.
func (c sdContainer) exec(args ...string) (string, error) {
	out, err := run(2*time.Minute, "docker", append([]string{"exec", c.name}, args...)...)
	return strings.TrimSpace(out), err
}

// must is exec that fails the test on an error.
func (c sdContainer) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// show returns a property of a unit, as systemctl show prints it.
func (c sdContainer) show(t *testing.T, unit, prop string) string {
	t.Helper()
	return c.must(t, "systemctl", "show", "--property", prop, "--value", unit)
}

// startSystemd starts the systemd container on the compose network and
// waits for it to boot. Its cleanups remove it, after they have logged
// the services' journals if the test failed, and wait until the agent it
// ran has left the cluster.
func startSystemd(t *testing.T) sdContainer {
	t.Helper()
	c := sdContainer{name: systemdContainer}
	_, _ = run(time.Minute, "docker", "rm", "-f", c.name) // left over from a killed run
	t.Cleanup(func() {
		d, err := eventually(30*time.Second, func() error { return notInStatus(systemdNode) })
		if err != nil {
			t.Errorf("the cluster kept %s: %v", systemdNode, err)
		} else {
			t.Logf("%s gone from status %v after the container was removed", systemdNode, d.Round(time.Millisecond))
		}
	})
	// SYS_ADMIN lets systemd mount the sandboxes (--privileged is refused
	// on some hosts); the agent's unit grants two capabilities that
	// Docker's bounding set lacks. A private cgroup namespace puts the
	// container's cgroup at the root of what systemd sees: with the host's
	// (Docker's default on cgroup v1) systemd looks for /docker/ID under
	// its own cgroup mount and exits at boot.
	docker(t, "run", "-d", "--name", c.name, "--hostname", systemdNode, "--network", network, "--cgroupns=private",
		"--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--cap-add", "DAC_READ_SEARCH", systemdImage)
	t.Cleanup(func() {
		if _, err := run(time.Minute, "docker", "rm", "-f", c.name); err != nil {
			t.Errorf("cannot remove the systemd container: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, u := range []string{agentService, relayService} {
				out, _ := c.exec("sh", "-c", "journalctl -u "+u+" --no-pager | tail -50")
				t.Logf("journalctl -u %s (last 50 lines):\n%s", u, out)
			}
		}
	})
	start := time.Now()
	var state string
	_, err := eventually(time.Minute, func() error {
		// is-system-running exits non-zero unless "running".
		state, _ = c.exec("systemctl", "is-system-running")
		if state == "running" || state == "degraded" {
			return nil
		}
		return fmt.Errorf("systemd is %q", state)
	})
	if err != nil {
		t.Fatal(err)
	}
	if state == "degraded" {
		failed, _ := c.exec("systemctl", "--failed", "--no-legend")
		t.Logf("systemd degraded, failed units (left alone):\n%s", failed)
	}
	version, _ := c.exec("systemctl", "--version")
	t.Logf("systemd %s in %s, %s after docker run", strings.SplitN(version, "\n", 2)[0], c.name, time.Since(start).Round(time.Millisecond))
	return c
}

func testSystemdInstall(t *testing.T, c sdContainer) {
	start := time.Now()
	out := c.must(t, append([]string{"/root/procfleet"}, agentInstall...)...)
	t.Logf("procfleet install agent (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.HasSuffix(out, agentService+": installed") {
		t.Errorf("install did not end with %q", agentService+": installed")
	}
	for _, want := range []string{reportLine("ran", "useradd"), reportLine("ran", "systemctl enable --now "+agentService)} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q", want)
		}
	}
	if s, _ := c.exec("systemctl", "is-enabled", agentService); s != "enabled" {
		t.Errorf("systemctl is-enabled %s: %q, want enabled", agentService, s)
	}
	waitActive(t, c, agentService)
	checkAgentProcess(t, c)
	// Without the capabilities the procfleet user cannot read PID 1's io,
	// so its series below shows that they reach the agent in the sandbox.
	if out, err := c.exec("runuser", "-u", "procfleet", "--", "cat", "/proc/1/io"); err == nil {
		t.Fatalf("the procfleet user reads /proc/1/io without capabilities:\n%s", out)
	}
	waitAgentData(t, c, start)
	t.Logf("%s in status and its data, PID 1's io among it, in VictoriaMetrics %v after install began", systemdNode, time.Since(start).Round(time.Millisecond))
}

// waitActive waits until unit is active and has stayed so for 3 seconds,
// so that a service that fails right after start is caught.
func waitActive(t *testing.T, c sdContainer, unit string) {
	t.Helper()
	_, err := eventually(30*time.Second, func() error {
		if s, _ := c.exec("systemctl", "is-active", unit); s != "active" {
			return fmt.Errorf("systemctl is-active %s: %q", unit, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if s, _ := c.exec("systemctl", "is-active", unit); s != "active" {
		t.Fatalf("%s: %q 3s after it was active", unit, s)
	}
	if n := c.show(t, unit, "NRestarts"); n != "0" {
		t.Errorf("%s: restarted %s times by systemd", unit, n)
	}
}

// checkAgentProcess checks that the agent's main process runs as the
// unit's user with exactly the unit's capabilities.
func checkAgentProcess(t *testing.T, c sdContainer) {
	t.Helper()
	pid := c.show(t, agentService, "MainPID")
	uid := c.must(t, "id", "-u", "procfleet")
	status := c.must(t, "cat", "/proc/"+pid+"/status")
	fields := map[string]string{}
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	if uid == "0" || fields["Uid"] != strings.Repeat(uid+" ", 3)+uid {
		t.Errorf("agent (pid %s) Uid: %q, want the procfleet user's %s four times", pid, fields["Uid"], uid)
	}
	caps, err := strconv.ParseUint(fields["CapEff"], 16, 64)
	if err != nil || caps != capsAgent {
		t.Errorf("agent (pid %s) CapEff: %q, want %016x", pid, fields["CapEff"], capsAgent)
	}
	t.Logf("agent pid %s: Uid %s, CapEff %s, NoNewPrivs %s, Seccomp %s", pid, fields["Uid"], fields["CapEff"], fields["NoNewPrivs"], fields["Seccomp"])
}

// waitAgentData waits until the agent is in status and its data newer
// than since is in either VictoriaMetrics, the io counters of systemd (PID
// 1, root's) among it.
func waitAgentData(t *testing.T, c sdContainer, since time.Time) {
	t.Helper()
	_, err := eventually(time.Minute, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		if _, ok := s.member(systemdNode); !ok {
			return fmt.Errorf("%s not in status", systemdNode)
		}
		for _, m := range []string{"node_load1", "proc_pid_io_read_bytes_total"} {
			q := fmt.Sprintf(`%s{instance=%q}`, m, systemdNode)
			if m != "node_load1" {
				q = fmt.Sprintf(`%s{instance=%q,pid="1"}`, m, systemdNode)
			}
			ts, _, err := samples(q, since, time.Now())
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				return fmt.Errorf("no %s since %s", q, since.Format(time.TimeOnly))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSystemdReinstall(t *testing.T, c sdContainer) {
	before := c.show(t, agentService, "InvocationID")
	out := c.must(t, append([]string{"/root/procfleet"}, agentInstall...)...)
	t.Logf("procfleet install agent, again:\n%s", out)
	if !strings.HasSuffix(out, agentService+": nothing changed") {
		t.Errorf("second install did not end with %q", agentService+": nothing changed")
	}
	if strings.Contains(out, reportLine("ran", "")) {
		t.Errorf("second install ran commands")
	}
	if after := c.show(t, agentService, "InvocationID"); after != before {
		t.Errorf("second install restarted the service: InvocationID %s -> %s", before, after)
	}
}

// exposureRE matches the last line of systemd-analyze security.
var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

func testSystemdSecurity(t *testing.T, c sdContainer) { checkExposure(t, c, agentService) }

// checkExposure logs unit's overall exposure level and checks it against
// maxExposure.
func checkExposure(t *testing.T, c sdContainer, unit string) {
	t.Helper()
	out := c.must(t, "systemd-analyze", "security", "--no-pager", unit+".service")
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s: no overall exposure level in:\n%s", unit, out)
	}
	level, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security %s: overall exposure level %.1f %s (want at most %.1f)", unit, level, m[2], maxExposure[unit])
	if level > maxExposure[unit] {
		t.Errorf("%s: exposure level %.1f, want at most %.1f; the unit lost hardening:\n%s", unit, level, maxExposure[unit], out)
	}
}

func testSystemdUpgrade(t *testing.T, c sdContainer) {
	before := c.show(t, agentService, "InvocationID")
	start := time.Now()
	out := c.must(t, append([]string{"/root/procfleet-upgrade"}, agentInstall...)...)
	restarted := time.Now() // systemctl restart returns once the old agent stopped
	t.Logf("procfleet install agent from the upgrade (%v):\n%s", restarted.Sub(start).Round(time.Millisecond), out)
	for _, want := range []string{reportLine("updated", "/usr/local/bin/procfleet (content differs)"), reportLine("ran", "systemctl restart "+agentService)} {
		if !strings.Contains(out, want) {
			t.Errorf("upgrade output lacks %q", want)
		}
	}
	sums := c.must(t, "sha256sum", "/root/procfleet-upgrade", "/usr/local/bin/procfleet")
	if f := strings.Fields(sums); len(f) != 4 || f[0] != f[2] {
		t.Errorf("installed binary is not the upgrade:\n%s", sums)
	}
	if after := c.show(t, agentService, "InvocationID"); after == before {
		t.Errorf("upgrade did not restart the service: InvocationID still %s", after)
	}
	waitActive(t, c, agentService)
	checkAgentProcess(t, c)
	waitAgentData(t, c, restarted)
	_, err := eventually(30*time.Second, func() error {
		s, err := getStatus()
		if err != nil {
			return err
		}
		if m, _ := s.member(systemdNode); m.Version != upgradeVersion {
			return fmt.Errorf("%s at version %q in status, want %q", systemdNode, m.Version, upgradeVersion)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	t.Logf("upgraded agent at version %s in status, its data arriving, %v after install began", upgradeVersion, time.Since(start).Round(time.Millisecond))
}

// testSystemdRelay installs a standalone relay beside the agent (clustered
// it would become a member that complete() does not expect), checks that
// it answers on its listen address, and uninstalls it again.
func testSystemdRelay(t *testing.T, c sdContainer) {
	agentID := c.show(t, agentService, "InvocationID")
	out := c.must(t, "/root/procfleet-upgrade", "install", "relay",
		"--upstream", "http://vm1:8428/api/v1/import/prometheus", "--listen", "127.0.0.1:9478")
	t.Logf("procfleet install relay:\n%s", out)
	if !strings.HasSuffix(out, relayService+": installed") {
		t.Errorf("install did not end with %q", relayService+": installed")
	}
	waitActive(t, c, relayService)
	// No curl in the image: bash's /dev/tcp speaks the HTTP.
	const healthz = `exec 3<>/dev/tcp/127.0.0.1/9478 && printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && cat <&3`
	resp, err := c.exec("bash", "-c", healthz)
	if err != nil || !strings.HasPrefix(resp, "HTTP/1.0 200") && !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Errorf("relay /healthz: %v:\n%s", err, resp)
	}
	checkExposure(t, c, relayService)
	if id := c.show(t, agentService, "InvocationID"); id != agentID {
		t.Errorf("installing the relay (same binary) restarted the agent: InvocationID %s -> %s", agentID, id)
	}
	out = c.must(t, "/root/procfleet-upgrade", "uninstall", "relay")
	t.Logf("procfleet uninstall relay:\n%s", out)
	if !strings.Contains(out, reportLine("kept", "/usr/local/bin/procfleet")) {
		t.Errorf("uninstall relay did not keep the binary the agent uses")
	}
	if _, err := c.exec("test", "-e", "/etc/systemd/system/"+relayService+".service"); err == nil {
		t.Errorf("%s.service still there", relayService)
	}
	if s, _ := c.exec("systemctl", "is-active", agentService); s != "active" {
		t.Errorf("agent %q after the relay's uninstall", s)
	}
}

func testSystemdUninstall(t *testing.T, c sdContainer) {
	start := time.Now()
	out := c.must(t, "/root/procfleet-upgrade", "uninstall", "agent")
	t.Logf("procfleet uninstall agent (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.HasSuffix(out, agentService+": uninstalled") {
		t.Errorf("uninstall did not end with %q", agentService+": uninstalled")
	}
	if s, _ := c.exec("systemctl", "is-active", agentService); s == "active" || s == "activating" {
		t.Errorf("systemctl is-active %s: %q after uninstall", agentService, s)
	}
	if s, _ := c.exec("systemctl", "list-unit-files", "--no-legend", agentService+".service"); s != "" {
		t.Errorf("systemd still knows the unit: %s", s)
	}
	for _, p := range []string{"/etc/systemd/system/" + agentService + ".service", "/usr/local/bin/procfleet", "/etc/procfleet"} {
		if _, err := c.exec("test", "-e", p); err == nil {
			t.Errorf("%s still there after uninstall", p)
		}
	}
	if _, err := c.exec("test", "-d", "/var/lib/procfleet/spool"); err != nil {
		t.Errorf("uninstall without --purge removed the spool: %v", err)
	}
	if _, err := eventually(20*time.Second, func() error { return notInStatus(systemdNode) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s gone from status %v after uninstall began", systemdNode, time.Since(start).Round(time.Millisecond))
}

// notInStatus fails while node is a member in `procfleet status`.
func notInStatus(node string) error {
	s, err := getStatus()
	if err != nil {
		return err
	}
	if _, ok := s.member(node); ok {
		return fmt.Errorf("%s still in status", node)
	}
	return nil
}
