package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// fileSource is one file_sd_config: the files its names match in the host's
// file_sd directory. It looks at them every FilePoll and reads a file again
// when its modification time, size or inode changed, and every file each
// refresh_interval. A file that cannot be read or parsed keeps its last
// good groups; a file that is gone loses them (as in Prometheus).
type fileSource struct {
	cfg   config.FileSDConfig
	dir   string
	c     Config
	files map[string]*fileState // by path, as globbed
	full  time.Time             // when every file was last read
}

// fileState is what one file gave.
type fileState struct {
	sig    fileSig
	groups []Group
	err    error
}

// fileSig tells a file's changes, as a poll sees them.
type fileSig struct {
	mod        time.Time
	size       int64
	dev, inode uint64
}

func newFileSource(cfg config.FileSDConfig, dir string, c Config) *fileSource {
	return &fileSource{cfg: cfg, dir: dir, c: c, files: map[string]*fileState{}}
}

func (s *fileSource) key() string { return sourceKey("file", s.cfg) }

// interval is the poll: a changed file is read at the next one.
func (s *fileSource) interval() time.Duration { return min(s.c.FilePoll, s.cfg.RefreshInterval.D()) }

func (s *fileSource) where() string {
	paths := make([]string, len(s.cfg.Files))
	for i, f := range s.cfg.Files {
		paths[i] = config.FileSDPath(s.dir, f)
	}
	return strings.Join(paths, ", ")
}

func (s *fileSource) refresh(context.Context) ([]Group, bool, error) {
	now := time.Now()
	full := now.Sub(s.full) >= s.cfg.RefreshInterval.D()
	if full {
		s.full = now
	}
	paths, errs := s.list()
	root, rootErr := filepath.EvalSymlinks(s.dir)
	if rootErr != nil {
		// Without the directory, no file can be told inside it: keep
		// every file's last groups.
		errs = append(errs, fmt.Errorf("cannot read the file_sd directory: %w", rootErr))
		paths = slices.Sorted(func(yield func(string) bool) {
			for p := range s.files {
				if !yield(p) {
					return
				}
			}
		})
	}
	changed := false
	b := newBudget(s.c)
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		st, ok := s.files[p]
		if !ok {
			st = &fileState{}
			s.files[p] = st
		}
		if rootErr == nil && s.poll(p, st, root, full, b) {
			changed = true
		}
		if st.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, st.err))
		}
	}
	for p, st := range s.files {
		if !seen[p] {
			changed = changed || len(st.groups) > 0
			delete(s.files, p)
		}
	}
	var groups []Group
	for _, p := range paths {
		groups = append(groups, s.files[p].groups...)
	}
	return groups, changed, errors.Join(errs...)
}

// list returns the files the names match, sorted, each once.
func (s *fileSource) list() ([]string, []error) {
	var paths []string
	var errs []error
	for _, f := range s.cfg.Files {
		m, err := filepath.Glob(filepath.Join(escapeGlob(s.dir), filepath.FromSlash(f)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", config.FileSDPath(s.dir, f), err))
			continue
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	return slices.Compact(paths), errs
}

// poll reads the file at p again if it changed or full is set, counting
// its groups against b either way; it reports whether its groups changed.
func (s *fileSource) poll(p string, st *fileState, root string, full bool, b *budget) bool {
	sig, err := statSig(p)
	if err == nil && !full && st.err == nil && sig == st.sig && st.sig != (fileSig{}) {
		_ = b.add(st.groups) // over the bound: the files read next fail, and the job reports it
		return false
	}
	var groups []Group
	if err == nil {
		groups, sig, err = s.read(p, root, b)
	}
	if err != nil {
		st.err = err
		return false
	}
	changed := !groupsEqual(groups, st.groups)
	st.groups, st.sig, st.err = groups, sig, nil
	return changed
}

// read opens the file at p, checks that what it opened is a regular file
// inside root (a symbolic link may lead elsewhere in it, not out of it),
// and parses it by its extension.
func (s *fileSource) read(p, root string, b *budget) ([]Group, fileSig, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
	// refused as not a regular file.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileSig{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileSig{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fileSig{}, fmt.Errorf("not a regular file (%s); refused", fi.Mode().Type())
	}
	if err := inside(f, p, root); err != nil {
		return nil, fileSig{}, err
	}
	meta := labels.Label{Name: labelFilepath, Value: p}
	r := limitReader(f, s.c.MaxBytes)
	var groups []Group
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json":
		groups, err = parseJSON(r, meta, b)
	default: // .yml, .yaml: config's names end in nothing else
		var data []byte
		if data, err = io.ReadAll(r); err == nil {
			groups, err = parseYAML(data, s.c.MaxYAMLNodes, meta, b)
		}
	}
	return groups, sigOf(fi), err
}

// inside checks that the open file f (opened at path p) is inside root, by
// the path the kernel gives the open file, so that a link swapped in after
// a check cannot lead out; without /proc it resolves p's links.
func inside(f *os.File, p, root string) error {
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !filepath.IsAbs(real) {
		if real, err = filepath.EvalSymlinks(p); err != nil {
			return err
		}
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("refused: a symbolic link leads out of the file_sd directory %s, to %s", root, real)
	}
	return nil
}

// statSig returns the signature of the file at p, links followed.
func statSig(p string) (fileSig, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return fileSig{}, err
	}
	return sigOf(fi), nil
}

func sigOf(fi os.FileInfo) fileSig {
	sig := fileSig{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.dev, sig.inode = uint64(st.Dev), st.Ino
	}
	return sig
}

// escapeGlob escapes the characters filepath.Match treats specially, so
// that a directory name is matched as written.
func escapeGlob(dir string) string {
	var b strings.Builder
	for _, c := range dir {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
