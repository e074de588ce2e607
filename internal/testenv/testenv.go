// Package testenv starts the real programs that procfleet's tests check
// against (VictoriaMetrics, node_exporter) from the pinned binaries that
// `make test` builds into bin/, and parses what they return.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Pinned versions of the programs the tests run. The Makefile builds the
// same versions into bin/.
const (
	VictoriaMetricsVersion = "v1.151.0"
	NodeExporterVersion    = "v1.12.1"
)

// RepoRoot returns the directory holding the module's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Bin returns the path of bin/<name> in the repository, failing the test
// when it is missing: `make test` builds every binary the tests need.
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s is missing; run `make test` (or `make tools`), which builds it: %v", p, err)
	}
	return p
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ModuleDir returns the directory of module@version in the module cache,
// downloading it through the module proxy if needed.
func ModuleDir(t testing.TB, module, version string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module+"@"+version).Output()
	if err != nil {
		t.Fatalf("testenv: go mod download %s@%s: %v", module, version, err)
	}
	const key = `"Dir": "`
	i := strings.Index(string(out), key)
	if i < 0 {
		t.Fatalf("testenv: no Dir in go mod download output: %s", out)
	}
	rest := string(out)[i+len(key):]
	return rest[:strings.IndexByte(rest, '"')]
}

// NodeExporterFixtures returns node_exporter's own /proc fixture tree from
// the module cache, a second, independent input for the parity tests.
func NodeExporterFixtures(t testing.TB) string {
	t.Helper()
	return filepath.Join(ModuleDir(t, "github.com/prometheus/node_exporter", NodeExporterVersion), "collector", "fixtures", "proc")
}

func startProcess(t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(bin)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("testenv: tail of %s output:\n%s", filepath.Base(bin), b)
		}
		logf.Close()
	})
	return cmd
}

func errorf(format string, args ...any) error { return fmt.Errorf("testenv: "+format, args...) }
