package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Env is what Install and Uninstall take from the host they run on;
// HostEnv returns this host's, and tests replace every part. Its
// functions are called from the goroutine of Install or Uninstall only.
type Env struct {
	// Executable returns the path of the binary to install.
	Executable func() (string, error)
	// Hostname returns the host's name, the default node name.
	Hostname func() (string, error)
	// SystemdRunning reports whether systemd manages this host.
	SystemdRunning func() bool
	// Euid returns the effective user ID.
	Euid func() int
	// System runs useradd and systemctl.
	System System
}

// HostEnv returns the Env of the host procfleet runs on: the running
// binary, os.Hostname, sd_booted(3)'s test and commands run with os/exec.
func HostEnv() Env {
	return Env{
		Executable: func() (string, error) {
			p, err := os.Executable()
			if err != nil {
				return "", err
			}
			return filepath.EvalSymlinks(p)
		},
		Hostname: os.Hostname,
		SystemdRunning: func() bool {
			// What sd_booted(3) checks.
			fi, err := os.Stat("/run/systemd/system")
			return err == nil && fi.IsDir()
		},
		Euid:   os.Geteuid,
		System: execSystem{},
	}
}

// System runs the commands that look at and change users and services;
// tests replace it. Both methods block until the command exits or ctx is
// done.
type System interface {
	// Check runs a command that changes nothing and reports whether it
	// exited 0. It fails only when the command cannot be run.
	Check(ctx context.Context, args ...string) (bool, error)
	// Run runs a command that changes the system.
	Run(ctx context.Context, args ...string) error
}

// execSystem runs the commands on this host.
type execSystem struct{}

func (execSystem) Check(ctx context.Context, args ...string) (bool, error) {
	err := exec.CommandContext(ctx, args[0], args[1:]...).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot run %s: %w", strings.Join(args, " "), err)
	}
	return true, nil
}

func (execSystem) Run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
