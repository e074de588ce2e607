// Package install installs procfleet's agent or relay as a systemd
// service on the host it runs on, or under a directory, and uninstalls it:
// "procfleet install" and "procfleet uninstall" are its command line. It
// writes the binary, the host-local config and environment files and the
// unit of deploy/systemd as it is, compares every file first so that a
// second run changes nothing, and drives useradd and systemctl where
// systemd runs. Install and Uninstall block until done; they are not meant
// to run concurrently for the same root.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Install sets up the service that cfg describes, with env's binary, and
// writes a line for every file and command to out. It checks cfg and the
// host first, writing nothing before it has; errors in cfg, and a run by
// another user than root on this host without DryRun, match ErrUsage.
func Install(ctx context.Context, cfg Config, env Env, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if err := cfg.checkHost(env); err != nil {
		return usageError{err}
	}
	in, err := newInstaller(env, cfg.Root, cfg.DryRun, out)
	if err != nil {
		return err
	}
	exe, err := env.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the running binary to install: %w", err)
	}
	return in.install(ctx, newSpec(cfg), exe)
}

// Uninstall stops and disables the service of cfg.Kind where systemd
// runs, and removes what Install made for it, writing a line for every
// file and command to out. Errors in cfg, and a run by another user than
// root on this host without DryRun, match ErrUsage.
func Uninstall(ctx context.Context, cfg UninstallConfig, env Env, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	in, err := newInstaller(env, cfg.Root, cfg.DryRun, out)
	if err != nil {
		return err
	}
	return in.uninstall(ctx, cfg.Kind, cfg.Purge)
}

// installer makes and removes the files of an install and drives systemd.
// It is used by one goroutine at a time.
type installer struct {
	root   string // prefix of every path; "" is /
	dryRun bool   // print what would be done, change nothing
	manage bool   // run useradd and systemctl
	why    string // why systemd is not managed, when !manage
	sys    System
	out    io.Writer
}

// newInstaller returns the installer for the --root and --dry-run flags.
func newInstaller(env Env, root string, dryRun bool, out io.Writer) (*installer, error) {
	in := &installer{dryRun: dryRun, sys: env.System, out: out}
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, usageError{fmt.Errorf("--root %q: %w", root, err)}
		}
		in.root, in.why = abs, "--root given"
		return in, nil
	}
	if !dryRun && env.Euid() != 0 {
		return nil, usageError{errors.New("install and uninstall write to /usr/local/bin, /etc and /var/lib and run systemctl: run them as root, see what they would do with --dry-run, or write under a directory with --root DIR")}
	}
	if !env.SystemdRunning() {
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

// verb returns done, or would for a dry run.
func (in *installer) verb(done, would string) string {
	if in.dryRun {
		return would
	}
	return done
}
