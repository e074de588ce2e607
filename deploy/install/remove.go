package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// uninstall stops kind's service, where systemd is managed, and removes
// its files.
func (in *installer) uninstall(ctx context.Context, kind Kind, purge bool) error {
	name := serviceName(kind)
	_, err := os.Stat(in.path(unitPath(kind)))
	installed := err == nil
	if in.dryRun {
		fmt.Fprintf(in.out, "dry run: uninstall %s changes nothing; it would:\n", kind)
	}
	if in.manage && installed {
		if err := in.runCommands(ctx, [][]string{{"systemctl", "disable", "--now", name}}); err != nil {
			return err
		}
	}
	n, err := in.removeFiles(kind)
	if err != nil {
		return err
	}
	m, err := in.removeData(kind, purge)
	if err != nil {
		return err
	}
	if in.manage && installed {
		if err := in.runCommands(ctx, [][]string{{"systemctl", "daemon-reload"}}); err != nil {
			return err
		}
	}
	if !in.manage && installed {
		fmt.Fprintf(in.out, "systemd left alone (%s): if %s runs on the target host, stop it there with: systemctl stop %s && systemctl daemon-reload\n", in.why, name, name)
	}
	switch {
	case n+m == 0:
		fmt.Fprintf(in.out, "%s: nothing to remove\n", name)
	case in.dryRun:
		fmt.Fprintf(in.out, "%s: dry run, nothing removed\n", name)
	default:
		fmt.Fprintf(in.out, "%s: uninstalled\n", name)
	}
	return nil
}

// removeFiles removes the files install made for kind and /etc/procfleet
// once empty, and returns how many it removed.
func (in *installer) removeFiles(kind Kind) (int, error) {
	paths := []string{unitPath(kind), envPath(kind), configPath(kind)}
	if !in.manage {
		// What "systemctl disable" removes where systemd is managed.
		paths = append(paths, wantsLink(kind))
	}
	other := unitPath(otherKind(kind))
	_, err := os.Stat(in.path(other))
	keepBin := err == nil
	if !keepBin {
		paths = append(paths, installBin)
	}
	n := 0
	for _, p := range paths {
		ok, err := in.remove(p)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if _, err := os.Stat(in.path(installBin)); err == nil && keepBin {
		in.printf("kept", "%s (%s still uses it)", in.path(installBin), in.path(other))
	}
	ok, err := in.removeDirIfEmpty(installEtc, envPath(kind), configPath(kind))
	if ok {
		n++
	}
	return n, err
}

// removeData removes kind's data with purge, and the data directory once
// empty; without purge it says what it keeps.
func (in *installer) removeData(kind Kind, purge bool) (int, error) {
	top, own := in.path(DataDir), in.path(dataPath(kind))
	if _, err := os.Stat(top); err != nil {
		return 0, nil
	}
	if !purge {
		in.printf("kept", "%s (data; uninstall --purge removes %s)", top, own)
		return 0, nil
	}
	n := 0
	if _, err := os.Lstat(own); err == nil {
		if !in.dryRun {
			if err := os.RemoveAll(own); err != nil {
				return n, fmt.Errorf("cannot remove %s: %w", own, err)
			}
		}
		in.printf(in.verb("removed", "would remove"), "%s", own)
		n++
	}
	ok, err := in.removeDirIfEmpty(DataDir, dataPath(kind))
	if ok {
		n++
	} else if err == nil {
		in.printf("kept", "%s (not empty)", top)
	}
	return n, err
}

// remove removes the file p of the installed system and reports whether
// it was there.
func (in *installer) remove(p string) (bool, error) {
	full := in.path(p)
	if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if !in.dryRun {
		if err := os.Remove(full); err != nil {
			return false, fmt.Errorf("cannot remove %s: %w", full, err)
		}
		if err := syncDir(filepath.Dir(full)); err != nil {
			return false, err
		}
	}
	in.printf(in.verb("removed", "would remove"), "%s", full)
	return true, nil
}

// removeDirIfEmpty removes the directory dir of the installed system when
// it holds nothing but the entries in going (which a dry run has not
// removed), and reports whether it did.
func (in *installer) removeDirIfEmpty(dir string, going ...string) (bool, error) {
	full := in.path(dir)
	des, err := os.ReadDir(full)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", full, err)
	}
	for _, de := range des {
		if !slices.Contains(going, dir+"/"+de.Name()) {
			return false, nil
		}
	}
	if !in.dryRun {
		if err := os.Remove(full); err != nil {
			return false, fmt.Errorf("cannot remove %s: %w", full, err)
		}
	}
	in.printf(in.verb("removed", "would remove"), "%s", full)
	return true, nil
}
