package procfile

import (
	"os"
	"syscall"
)

// procSuperMagic is PROC_SUPER_MAGIC, the f_type statfs gives for a procfs.
const procSuperMagic = 0x9fa0

// Kept is a file read whole at every scan, as a host generator reads its
// /proc files, through a descriptor kept open from one read to the next.
// Opening a /proc file by path (the lookup of each component, the file's
// set-up) and closing it again cost as much as the read itself or more:
// half of a host generator's reads (docs/performance.md, "Host files
// through kept descriptors"). A procfs file generates its content afresh
// at every read from offset 0 (seq_file restarts its iterator there), so
// the same descriptor reads the current content every time, and the files
// of /proc/net stay those of the network namespace the agent opened them
// in, as they are by path.
//
// Only a file on a procfs is kept: a file of another filesystem (a test's
// fixture tree; LXCFS's FUSE files mounted over /proc's in a container,
// which may serve a descriptor what they generated at its first read) may
// not give the current content through an old descriptor, so it is opened
// for each read as ReadFullZ does (its filesystem is asked once, at the
// first read that succeeds). A read through
// a kept descriptor that fails closes it, and the file is opened again by
// path within the same read, so a descriptor gone bad costs one scan's
// extra open and loses nothing.
//
// The zero Kept is not usable: make one with NewKept. A Kept is not safe
// for concurrent use; Close releases its descriptor.
type Kept struct {
	path  string
	pathz []byte
	fd    int  // the kept descriptor plus one; 0 when none is kept
	other bool // found on another filesystem than procfs: opened per read without asking again
}

// NewKept returns the file at path, not yet open.
func NewKept(path string) Kept {
	return Kept{path: path, pathz: append([]byte(path), 0)}
}

// Path returns the file's path.
func (k *Kept) Path() string { return k.path }

// Open reports whether a descriptor is kept.
func (k *Kept) Open() bool { return k.fd > 0 }

// Close releases the kept descriptor, if any. The next read opens the file
// again.
func (k *Kept) Close() error {
	if k.fd == 0 {
		return nil
	}
	fd := k.fd - 1
	k.fd = 0
	return syscall.Close(fd)
}

// ReadKept returns the whole content of k's file, read into the reader's
// buffer and valid until the next read, as ReadFullZ does (until a read
// returns 0 bytes), through k's kept descriptor when it has one. Errors
// are those of ReadFullZ: *os.PathError naming the file, so
// errors.Is(err, fs.ErrNotExist) works. It allocates nothing unless the
// buffer has to grow or an error occurs.
func (r *Reader) ReadKept(k *Kept) ([]byte, error) {
	if k.fd > 0 {
		if data, err := r.readAll(k.fd-1, k.pathz); err == nil {
			return data, nil
		}
		_ = k.Close() // a descriptor gone bad: opened again below
	}
	fd, err := OpenZ(k.pathz, syscall.O_RDONLY)
	if err != nil {
		return nil, err
	}
	data, err := r.readAll(fd, k.pathz)
	if err == nil && !k.other {
		if onProcfs(fd) {
			k.fd = fd + 1
			return data, nil
		}
		k.other = true
	}
	if cerr := syscall.Close(fd); cerr != nil && err == nil {
		err = &os.PathError{Op: "close", Path: k.path, Err: cerr}
	}
	return data, err
}

// onProcfs reports whether the open file fd lies on a procfs.
func onProcfs(fd int) bool {
	var st syscall.Statfs_t
	for {
		err := syscall.Fstatfs(fd, &st)
		if err == syscall.EINTR {
			continue
		}
		return err == nil && st.Type == procSuperMagic
	}
}
