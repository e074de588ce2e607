package spool

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// withUmask sets the process's umask for the rest of the test. The umask
// is process-wide: a test that calls it must not run in parallel.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// modes returns the permissions of dir and of every file in it, by name
// ("." for dir).
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	out["."] = fi.Mode().Perm()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fi.Mode().Perm()
	}
	return out
}

// fillLog appends and acknowledges records until dir holds several
// segments and an ack file, then closes the log.
func fillLog(t *testing.T, dir string) {
	t.Helper()
	l, _ := openLog(t, dir, testConfig(200))
	appendN(t, l, 0, 30)
	if err := l.Ack(3); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m := modes(t, dir)
	if _, ok := m[ackName]; !ok || len(m) < 4 {
		t.Fatalf("log files %v; want segments and %s", m, ackName)
	}
}

// The log's directory (and the parents Open creates) is 0700 and its
// files 0600 whatever the umask: a permissive umask must not make them
// readable by others, a strict one need not be set.
func TestNewLogModes(t *testing.T) {
	for _, mask := range []int{0o022, 0o000} {
		withUmask(t, mask)
		parent := filepath.Join(t.TempDir(), "data")
		dir := filepath.Join(parent, "spool")
		fillLog(t, dir)
		for name, perm := range modes(t, dir) {
			want := fileMode
			if name == "." {
				want = dirMode
			}
			if perm != want {
				t.Errorf("umask %#o: %s in the log has mode %#o; want %#o", mask, name, perm, want)
			}
		}
		if perm := modes(t, parent)["."]; perm != dirMode {
			t.Errorf("umask %#o: parent created by Open has mode %#o; want %#o", mask, perm, dirMode)
		}
	}
}

// A log that an older version left readable by others (0755, 0644) is
// made 0700 and 0600 on Open, and counted; files that are not the log's
// are left alone.
func TestOpenTightensOldModes(t *testing.T) {
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "spool")
	fillLog(t, dir)
	old := modes(t, dir)
	for name := range old {
		mode := fs.FileMode(0o644)
		if name == "." {
			mode = 0o755
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	// A torn rename of the ack file leaves ack.tmp behind.
	if err := os.WriteFile(filepath.Join(dir, ackName+".tmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, _ := openLog(t, dir, testConfig(200))
	if got, want := l.Recovery().Tightened, len(old)+1; got != want {
		t.Errorf("Recovery().Tightened = %d; want %d (the directory and its log files)", got, want)
	}
	if n := len(l.Recovery().Exposed); n != 0 {
		t.Errorf("Recovery().Exposed = %q; want none", l.Recovery().Exposed)
	}
	for name, perm := range modes(t, dir) {
		want := fileMode
		switch name {
		case ".":
			want = dirMode
		case "README":
			want = 0o644
		}
		if perm != want {
			t.Errorf("%s has mode %#o after Open; want %#o", name, perm, want)
		}
	}
	appendN(t, l, 100, 1) // the log still works
}

// A directory or file of another owner is not changed; Open notes it when
// others may read the file or write in the directory.
func TestOpenLeavesOthersModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	withUmask(t, 0o022)
	const nobody = 65534
	f := func(name string, path func(dir string) string, mode fs.FileMode, exposed bool) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			fillLog(t, dir)
			p := path(dir)
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			l, err := Open(dir, testConfig(200), metrics.NewSet())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("mode of %s = %#o after Open; want %#o, not changed", p, fi.Mode().Perm(), mode)
			}
			ex := l.Recovery().Exposed
			if got := len(ex) == 1 && strings.Contains(ex[0], p) && strings.Contains(ex[0], "uid 65534"); got != exposed {
				t.Errorf("Recovery().Exposed = %q; want a note on %s: %v", ex, p, exposed)
			}
		})
	}
	ack := func(dir string) string { return filepath.Join(dir, ackName) }
	self := func(dir string) string { return dir }
	f("file readable by others", ack, 0o644, true)
	f("file readable by the group", ack, 0o640, false)
	f("directory writable by others", self, 0o757, true)
	f("directory readable by others", self, 0o755, false)
}
