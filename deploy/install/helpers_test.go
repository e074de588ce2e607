package install

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem answers Check from state and records Run. Without state it
// fails the test on any call: installs under a Root must not touch systemd.
type fakeSystem struct {
	t     *testing.T
	state map[string]bool // joined args of a Check: its answer
	ran   []string        // joined args of every Run
}

func (f *fakeSystem) Check(_ context.Context, args ...string) (bool, error) {
	if f.state == nil {
		f.t.Errorf("Check(%q) called; want no command", args)
	}
	return f.state[strings.Join(args, " ")], nil
}

func (f *fakeSystem) Run(_ context.Context, args ...string) error {
	if f.state == nil {
		f.t.Errorf("Run(%q) called; want no command", args)
	}
	f.ran = append(f.ran, strings.Join(args, " "))
	return nil
}

// testEnv returns an Env that installs exe, on a host named test-host
// where systemd runs.
func testEnv(t *testing.T, exe string) Env {
	return Env{
		Executable:     func() (string, error) { return exe, nil },
		Hostname:       func() (string, error) { return "test-host", nil },
		SystemdRunning: func() bool { return true },
		Euid:           func() int { return 0 },
		System:         &fakeSystem{t: t},
	}
}

// writeExe writes a stand-in for the running binary and returns its path.
func writeExe(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "procfleet")
	if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// clustered returns the Config of kind in cluster prod under root.
func clustered(kind Kind, root string) Config {
	c := DefaultConfig(kind)
	c.Root, c.Etcd, c.Cluster = root, "http://10.0.0.1:2379", "prod"
	return c
}

// runInstall runs Install with cfg in env and returns what it printed.
func runInstall(t *testing.T, env Env, cfg Config) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Install(context.Background(), cfg, env, &out)
	return out.String(), err
}

func mustInstall(t *testing.T, env Env, cfg Config) string {
	t.Helper()
	out, err := runInstall(t, env, cfg)
	if err != nil {
		t.Fatalf("install %+v: %v\n%s", cfg, err, out)
	}
	return out
}

func mustUninstall(t *testing.T, env Env, cfg UninstallConfig) string {
	t.Helper()
	var out bytes.Buffer
	if err := Uninstall(context.Background(), cfg, env, &out); err != nil {
		t.Fatalf("uninstall %+v: %v\n%s", cfg, err, out.String())
	}
	return out.String()
}

// tree returns every path under root, relative, with its mode.
func tree(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, content)
	}
}

func wantOutput(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// baseDirs are the directories of the system an install under a Root
// creates and uninstall leaves.
var baseDirs = map[string]fs.FileMode{
	"usr": fs.ModeDir | 0o755, "usr/local": fs.ModeDir | 0o755, "usr/local/bin": fs.ModeDir | 0o755,
	"etc": fs.ModeDir | 0o755, "etc/systemd": fs.ModeDir | 0o755, "etc/systemd/system": fs.ModeDir | 0o755,
	"var": fs.ModeDir | 0o755, "var/lib": fs.ModeDir | 0o755,
}

func mergeModes(ms ...map[string]fs.FileMode) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func mapsEqual(a, b map[string]fs.FileMode) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
