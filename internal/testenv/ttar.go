package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ProcfsVersion is the github.com/prometheus/procfs version whose fixtures
// the tests use (the one node_exporter v1.12.1 builds with).
const ProcfsVersion = "v0.21.1"

var (
	procfsOnce sync.Once
	procfsDir  string
	procfsErr  string
)

// ProcfsFixtures extracts the fixture tree that github.com/prometheus/procfs
// ships (testdata/fixtures.ttar) once per test binary and returns its proc
// root. Symlinks in the archive are kept as symlinks.
func ProcfsFixtures(t testing.TB) string {
	t.Helper()
	procfsOnce.Do(func() {
		archive := filepath.Join(ModuleDir(t, "github.com/prometheus/procfs", ProcfsVersion), "testdata", "fixtures.ttar")
		dir, err := os.MkdirTemp("", "procfs-fixtures-")
		if err != nil {
			procfsErr = err.Error()
			return
		}
		if err := ExtractTTAR(archive, dir, func(string) bool { return true }); err != nil {
			procfsErr = err.Error()
			return
		}
		procfsDir = filepath.Join(dir, "fixtures", "proc")
	})
	if procfsErr != "" {
		t.Fatalf("testenv: procfs fixtures: %s", procfsErr)
	}
	return procfsDir
}

// ExtractTTAR writes the entries of a ttar archive (the text archive format
// of the procfs fixtures) under dir, for the paths keep accepts.
func ExtractTTAR(archive, dir string, keep func(path string) bool) error {
	data, err := os.ReadFile(archive)
	if err != nil {
		return err
	}
	ls := strings.Split(string(data), "\n")
	for i := 0; i < len(ls); i++ {
		l := ls[i]
		switch {
		case strings.HasPrefix(l, "Directory: "):
			p := strings.TrimPrefix(l, "Directory: ")
			if keep(p) {
				if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
					return err
				}
			}
		case strings.HasPrefix(l, "Path: "):
			p := strings.TrimPrefix(l, "Path: ")
			if i+1 < len(ls) && strings.HasPrefix(ls[i+1], "SymlinkTo: ") {
				if keep(p) {
					target := strings.TrimPrefix(ls[i+1], "SymlinkTo: ")
					full := filepath.Join(dir, p)
					_ = os.MkdirAll(filepath.Dir(full), 0o755)
					if err := os.Symlink(target, full); err != nil && !os.IsExist(err) {
						return err
					}
				}
				continue
			}
			if i+1 >= len(ls) || !strings.HasPrefix(ls[i+1], "Lines: ") {
				continue
			}
			n, err := strconv.Atoi(strings.TrimPrefix(ls[i+1], "Lines: "))
			if err != nil || i+2+n > len(ls) {
				return errorf("%s line %d: bad Lines header", archive, i+2)
			}
			var b strings.Builder
			for k := 0; k < n; k++ {
				c := ls[i+2+k]
				if k == n-1 && strings.HasSuffix(c, "EOF") {
					b.WriteString(strings.TrimSuffix(c, "EOF"))
				} else {
					b.WriteString(c + "\n")
				}
			}
			i += 1 + n
			if keep(p) {
				full := filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					return err
				}
				content := strings.ReplaceAll(b.String(), "NULLBYTE", "\x00")
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
