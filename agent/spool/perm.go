package spool

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// A log holds what it is given, the agent's batches or the relay's import
// bodies, so only its owner may read it: the directory is created 0700 and
// every file 0600, whatever the umask (which can only take bits away).
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// tighten removes the group and other permissions, which older versions
// gave (0755 and 0644), from the log directory and from the files of the
// log in it (segments, ack, ack.tmp; names is the directory's listing).
// It changes only what this process owns: a directory or file of another
// owner was set up by someone else, on purpose or not, and is noted in
// Recovery.Exposed when others (not the group) may read a file or write
// there. A directory with the sticky bit (a shared one such as /tmp) is
// left as it is. It fails only when the directory cannot be read.
func (l *Log) tighten(names []fs.DirEntry) error {
	fi, err := os.Stat(l.dir)
	if err != nil {
		return fmt.Errorf("cannot stat spool directory: %w", err)
	}
	if fi.Mode()&fs.ModeSticky == 0 {
		l.tightenPath(l.dir, fi, dirMode)
	}
	for _, e := range names {
		name := e.Name()
		if _, ok := parseSegmentName(name); !ok && name != ackName && name != ackName+".tmp" {
			continue
		}
		path := filepath.Join(l.dir, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		l.tightenPath(path, fi, fileMode)
	}
	return nil
}

// tightenPath gives path (described by fi) the permissions want when it
// allows more and is this process's, and notes why it could not.
func (l *Log) tightenPath(path string, fi fs.FileInfo, want fs.FileMode) {
	perm := fi.Mode().Perm()
	if perm&^want == 0 {
		return
	}
	uid, owned := owner(fi)
	if !owned {
		others := fs.FileMode(0o007)
		if fi.IsDir() {
			others = 0o002
		}
		if perm&others != 0 {
			l.recovery.Exposed = append(l.recovery.Exposed, fmt.Sprintf(
				"%s: mode %#o, owned by uid %d, not by this process (uid %d): left as it is; make it %#o",
				path, perm, uid, os.Geteuid(), want))
		}
		return
	}
	if err := os.Chmod(path, perm&want); err != nil {
		l.recovery.Exposed = append(l.recovery.Exposed, fmt.Sprintf(
			"%s: mode %#o: cannot make it %#o: %v", path, perm, perm&want, err))
		return
	}
	l.recovery.Tightened++
}

// owner returns the owner of the file described by fi and whether it is
// this process's effective user.
func owner(fi fs.FileInfo) (uid int, ours bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), int(st.Uid) == os.Geteuid()
}
