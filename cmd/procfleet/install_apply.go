package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// installer makes and removes the files of an install and drives systemd.
// It is used by one goroutine at a time.
type installer struct {
	root   string // prefix of every path; "" is /
	dryRun bool   // print what would be done, change nothing
	manage bool   // run useradd and systemctl
	why    string // why systemd is not managed, when !manage
	sys    system
	out    io.Writer
}

// newInstaller returns the installer for the --root and --dry-run flags.
func newInstaller(env installEnv, root string, dryRun bool, out io.Writer) (*installer, error) {
	in := &installer{dryRun: dryRun, sys: env.sys, out: out}
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, usageError{fmt.Errorf("--root %q: %w", root, err)}
		}
		in.root, in.why = abs, "--root given"
		return in, nil
	}
	if !dryRun && env.euid() != 0 {
		return nil, usageError{errors.New("install and uninstall write to /usr/local/bin, /etc and /var/lib and run systemctl: run them as root, see what they would do with --dry-run, or write under a directory with --root DIR")}
	}
	if !env.systemdRunning() {
		in.why = "systemd is not running on this host"
		return in, nil
	}
	in.manage = true
	return in, nil
}

// path returns where p of the installed system is written.
func (in *installer) path(p string) string {
	if in.root == "" {
		return p
	}
	return filepath.Join(in.root, p)
}

// printf writes one line of the report, verb first.
func (in *installer) printf(verb, format string, args ...any) {
	fmt.Fprintf(in.out, "%-14s %s\n", verb, fmt.Sprintf(format, args...))
}

type change int

const (
	changeNone change = iota
	changeCreate
	changeUpdate
)

// step is an entry and what install does to it.
type step struct {
	entry
	change change
	detail string // what differs, for an update
}

// changes sums up an install's steps.
type changes struct {
	any     bool // anything was or would be made or changed
	files   bool // a file: binary, config, environment or unit
	updated bool // a file that was there before
	binary  bool
	unit    bool
}

func changesOf(steps []step) changes {
	var ch changes
	for _, s := range steps {
		if s.change == changeNone {
			continue
		}
		ch.any = true
		if s.isDir() {
			continue
		}
		ch.files = true
		ch.updated = ch.updated || s.change == changeUpdate
		ch.binary = ch.binary || s.path == installBin
		ch.unit = ch.unit || strings.HasSuffix(s.path, ".service")
	}
	return ch
}

// install makes the files of s, exe being the binary, and starts the
// service where systemd is managed.
func (in *installer) install(ctx context.Context, s installSpec, exe string) error {
	entries, err := s.layout(exe)
	if err != nil {
		return err
	}
	steps := make([]step, 0, len(entries))
	for _, e := range entries {
		c, detail, err := in.compare(e)
		if err != nil {
			return err
		}
		steps = append(steps, step{entry: e, change: c, detail: detail})
	}
	if in.dryRun {
		fmt.Fprintf(in.out, "dry run: install %s changes nothing; it would:\n", s.kind)
	}
	for _, st := range steps {
		if err := in.apply(st); err != nil {
			return err
		}
		in.report(st)
	}
	ch := changesOf(steps)
	ran, err := in.startService(ctx, s.kind, ch)
	if err != nil {
		return err
	}
	switch {
	case !ch.any && !ran:
		fmt.Fprintf(in.out, "%s: nothing changed\n", serviceName(s.kind))
	case in.dryRun:
		fmt.Fprintf(in.out, "%s: dry run, nothing changed\n", serviceName(s.kind))
	default:
		fmt.Fprintf(in.out, "%s: installed\n", serviceName(s.kind))
	}
	return nil
}

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
		return writeFileAtomic(p, s.mode, bytes.NewReader(s.content))
	}
	f, err := os.Open(s.src)
	if err != nil {
		return fmt.Errorf("cannot read the binary to install: %w", err)
	}
	defer f.Close()
	return writeFileAtomic(p, s.mode, f)
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

// verb returns done, or would for a dry run.
func (in *installer) verb(done, would string) string {
	if in.dryRun {
		return would
	}
	return done
}

// writeFileAtomic replaces path with what r holds, with mode: readers see
// the old file or the new one, never a part of it, also after a crash.
func writeFileAtomic(path string, mode fs.FileMode, r io.Reader) (err error) {
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
