package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// units are the units by file name.
var units = map[string]func() string{
	"procfleet-agent.service": Agent,
	"procfleet-relay.service": Relay,
}

// TestUnitsAreTheFiles checks that the accessors return the files of this
// directory byte for byte, the text that packagers copy.
func TestUnitsAreTheFiles(t *testing.T) {
	for name, text := range units {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if text() != string(b) || len(b) == 0 {
			t.Errorf("%s: the embedded text (%d bytes) is not the file (%d bytes)", name, len(text()), len(b))
		}
	}
}

// TestUnitFilesVerify has systemd-analyze check both units: every
// directive known, every value valid, the binary there.
func TestUnitFilesVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: the units are not verified")
	}
	// verify checks that ExecStart's binary exists: the test binary stands
	// in for procfleet.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for name, text := range units {
		p := filepath.Join(dir, name)
		unit := strings.ReplaceAll(text(), "/usr/local/bin/procfleet ", exe+" ")
		if unit == text() {
			t.Fatalf("%s: ExecStart= does not run /usr/local/bin/procfleet", name)
		}
		if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	// Keys newer than the systemd at hand are ignored with a warning, as
	// the units' comments say: the restart steps (254) and ProtectProc=
	// (247). Any other message is a mistake in a unit.
	known := regexp.MustCompile(`^\S+:\d+: Unknown key '(RestartSteps|RestartMaxDelaySec|ProtectProc)' in section \[Service\], ignoring\.$`)
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l != "" && !known.MatchString(l) {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
}

// TestUnitCapabilities checks that the agent gets exactly the two
// capabilities the per-process generator needs, and the relay none.
func TestUnitCapabilities(t *testing.T) {
	f := func(unit, want string) {
		t.Helper()
		for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
			re := regexp.MustCompile(`(?m)^` + key + `=(.*)$`)
			m := re.FindAllStringSubmatch(unit, -1)
			if key == "AmbientCapabilities" && want == "" && m == nil {
				continue
			}
			if len(m) != 1 || m[0][1] != want {
				t.Errorf("%s: %q, want exactly one line with %q", key, m, want)
			}
		}
	}
	f(Agent(), "CAP_DAC_READ_SEARCH CAP_SYS_PTRACE")
	f(Relay(), "")
	// Either would hide the host's processes from the agent.
	for _, key := range []string{"ProtectProc=", "ProcSubset=", "PrivateUsers=", "PrivateNetwork=", "PrivatePIDs="} {
		if regexp.MustCompile(`(?m)^` + key).MatchString(Agent()) {
			t.Errorf("agent unit sets %s", key)
		}
	}
}

// TestUnitExposure has systemd-analyze score the units' sandboxing (0 is
// fully locked down, 10 is none): 2.1 and 1.4 with systemd 252, where
// dropping any one of ProtectSystem=, ProtectHome=, PrivateTmp=,
// NoNewPrivileges=, User= and the others scored raises the agent's to 2.3
// or more. The limits are for that version; another may score otherwise.
func TestUnitExposure(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: the units' exposure is not scored")
	}
	dir := t.TempDir()
	level := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d)`)
	for name, limit := range map[string]float64{"procfleet-agent.service": 2.2, "procfleet-relay.service": 1.5} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(units[name]()), 0o644); err != nil {
			t.Fatal(err)
		}
		// --offline (systemd 250 and later) scores the file, not a loaded unit.
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
		m := level.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v; no overall level in:\n%s", p, err, out)
		}
		got, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: exposure %.1f", name, got)
		if got > limit {
			t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", name, got, limit, out)
		}
	}
}
