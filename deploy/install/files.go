package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// compare tells what install has to do to e.
func (in *installer) compare(e entry) (change, string, error) {
	p := in.path(e.path)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return changeCreate, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("cannot check %s: %w", p, err)
	}
	if e.isDir() {
		if !fi.IsDir() {
			return 0, "", fmt.Errorf("%s: is not a directory; move it out of the way", p)
		}
		if e.system || fi.Mode() == e.mode {
			return changeNone, "", nil
		}
		return changeUpdate, fmt.Sprintf("mode %04o -> %04o", fi.Mode().Perm(), e.mode.Perm()), nil
	}
	if fi.IsDir() {
		return 0, "", fmt.Errorf("%s: is a directory; move it out of the way", p)
	}
	var diffs []string
	if !fi.Mode().IsRegular() {
		diffs = append(diffs, "not a regular file")
	} else if same, err := sameContent(e, p, fi); err != nil {
		return 0, "", err
	} else if !same {
		diffs = append(diffs, "content differs")
	}
	if fi.Mode().IsRegular() && fi.Mode() != e.mode {
		diffs = append(diffs, fmt.Sprintf("mode %04o -> %04o", fi.Mode().Perm(), e.mode.Perm()))
	}
	if len(diffs) == 0 {
		return changeNone, "", nil
	}
	return changeUpdate, strings.Join(diffs, ", "), nil
}

// sameContent reports whether the file at p, whose info is fi, holds e.
func sameContent(e entry, p string, fi fs.FileInfo) (bool, error) {
	if e.content != nil {
		if fi.Size() != int64(len(e.content)) {
			return false, nil
		}
		old, err := os.ReadFile(p)
		if err != nil {
			return false, fmt.Errorf("cannot read %s: %w", p, err)
		}
		return bytes.Equal(old, e.content), nil
	}
	si, err := os.Stat(e.src)
	if err != nil {
		return false, fmt.Errorf("cannot read the binary to install: %w", err)
	}
	if os.SameFile(si, fi) {
		return true, nil
	}
	if si.Size() != fi.Size() {
		return false, nil
	}
	return sameFiles(e.src, p)
}

// sameFiles compares two files of the same size, a block at a time.
func sameFiles(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, fmt.Errorf("cannot read the binary to install: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", b, err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(fa, ba)
		nb, errB := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if errA == io.EOF || errA == io.ErrUnexpectedEOF {
			return errB == io.EOF || errB == io.ErrUnexpectedEOF, nil
		}
		if errA != nil {
			return false, fmt.Errorf("cannot read the binary to install: %w", errA)
		}
		if errB != nil {
			return false, fmt.Errorf("cannot read %s: %w", b, errB)
		}
	}
}

// apply makes one step, unless it is a dry run or there is nothing to do.
func (in *installer) apply(s step) error {
	if in.dryRun || s.change == changeNone {
		return nil
	}
	p := in.path(s.path)
	if s.isDir() {
		if s.change == changeCreate {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("cannot create %s: %w", p, err)
			}
		}
		if err := os.Chmod(p, s.mode.Perm()); err != nil {
			return fmt.Errorf("cannot set the mode of %s: %w", p, err)
		}
		return nil
	}
	if s.content != nil {
		return WriteFileAtomic(p, s.mode, bytes.NewReader(s.content))
	}
	f, err := os.Open(s.src)
	if err != nil {
		return fmt.Errorf("cannot read the binary to install: %w", err)
	}
	defer f.Close()
	return WriteFileAtomic(p, s.mode, f)
}

// report prints what was done to one step, or would be.
func (in *installer) report(s step) {
	if s.system && s.change == changeNone {
		return
	}
	p, kind := in.path(s.path), "file"
	if s.isDir() {
		kind = "directory"
	}
	switch s.change {
	case changeNone:
		in.printf("unchanged", "%s", p)
	case changeCreate:
		in.printf(in.verb("created", "would create"), "%s (%s, mode %04o)", p, kind, s.mode.Perm())
	case changeUpdate:
		in.printf(in.verb("updated", "would update"), "%s (%s)", p, s.detail)
	}
}

// WriteFileAtomic writes what r reads to path with mode, as the installer
// writes every file: into a temporary file beside it, synced, then renamed
// over path and the directory synced, so that path holds the old file or
// the new one, never a part of it, also after a crash.
func WriteFileAtomic(path string, mode fs.FileMode, r io.Reader) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	// After the write: the mode CreateTemp gives is reduced by the umask.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("cannot set the mode of %s: %w", f.Name(), err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Name(), err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", dir, err)
	}
	return nil
}
