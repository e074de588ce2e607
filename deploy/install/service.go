package install

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// startService creates the user and enables, starts or restarts kind's
// service as ch requires, where systemd is managed; elsewhere it prints
// what to run on the target host. It reports whether it ran (or, in a dry
// run, would run) anything.
func (in *installer) startService(ctx context.Context, kind Kind, ch changes) (bool, error) {
	if !in.manage {
		if ch.files || in.dryRun {
			in.printHints(kind, ch)
		}
		return false, nil
	}
	cmds, err := in.startCommands(ctx, kind, ch)
	if err != nil {
		return false, err
	}
	return len(cmds) > 0, in.runCommands(ctx, cmds)
}

// startCommands returns the commands that bring kind's service up to
// date after ch.
func (in *installer) startCommands(ctx context.Context, kind Kind, ch changes) ([][]string, error) {
	var cmds [][]string
	add, err := in.userCommand(ctx)
	if err != nil {
		return nil, err
	}
	if add != nil {
		cmds = append(cmds, add)
	}
	if ch.unit {
		cmds = append(cmds, []string{"systemctl", "daemon-reload"})
	}
	name := serviceName(kind)
	enabled, err := in.sys.Check(ctx, "systemctl", "is-enabled", "--quiet", name)
	if err != nil {
		return nil, err
	}
	active, err := in.sys.Check(ctx, "systemctl", "is-active", "--quiet", name)
	if err != nil {
		return nil, err
	}
	if !enabled || !active {
		cmds = append(cmds, []string{"systemctl", "enable", "--now", name})
	}
	if active && ch.files {
		cmds = append(cmds, []string{"systemctl", "restart", name})
	}
	if !ch.binary {
		return cmds, nil
	}
	// The other service runs the same binary, now replaced on disk.
	other := otherKind(kind)
	if _, err := os.Stat(in.path(unitPath(other))); err != nil {
		return cmds, nil
	}
	on, err := in.sys.Check(ctx, "systemctl", "is-active", "--quiet", serviceName(other))
	if err != nil {
		return nil, err
	}
	if on {
		cmds = append(cmds, []string{"systemctl", "restart", serviceName(other)})
	}
	return cmds, nil
}

// userCommand returns the useradd command that creates the service user,
// or nil when it exists. A procfleet group made beforehand is used.
func (in *installer) userCommand(ctx context.Context) ([]string, error) {
	ok, err := in.sys.Check(ctx, "getent", "passwd", installUser)
	if err != nil || ok {
		return nil, err
	}
	group, err := in.sys.Check(ctx, "getent", "group", installUser)
	if err != nil {
		return nil, err
	}
	cmd := []string{"useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"}
	if group {
		cmd = append(cmd, "--gid", installUser)
	} else {
		// The unit's Group= needs the group; without this, useradd makes
		// it only where login.defs has USERGROUPS_ENAB yes.
		cmd = append(cmd, "--user-group")
	}
	return append(cmd, installUser), nil
}

// runCommands runs cmds, or prints them in a dry run.
func (in *installer) runCommands(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		line := strings.Join(c, " ")
		if in.dryRun {
			in.printf("would run", "%s", line)
			continue
		}
		if err := in.sys.Run(ctx, c...); err != nil {
			return err
		}
		in.printf("ran", "%s", line)
	}
	return nil
}

// printHints prints what to run on the target host to start kind's
// service, where install does not manage systemd.
func (in *installer) printHints(kind Kind, ch changes) {
	name := serviceName(kind)
	hints := []string{
		"getent passwd " + installUser + " >/dev/null || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group " + installUser,
		"systemctl daemon-reload",
		"systemctl enable --now " + name,
	}
	if ch.updated {
		hints = append(hints, "systemctl try-restart "+name)
	}
	fmt.Fprintf(in.out, "systemd and users left alone (%s); to start the service, run as root on the target host:\n", in.why)
	for _, h := range hints {
		fmt.Fprintf(in.out, "  %s\n", h)
	}
}
