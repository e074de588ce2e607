package procfile

import (
	"bytes"
	"os"
	"syscall"
	"unsafe"
)

// atFDCWD is AT_FDCWD: openat resolves a relative path from the working
// directory, as open does. A variable, because a negative constant does not
// convert to uintptr.
var atFDCWD = -100

// OpenZ opens pathz, a path that ends in a NUL byte, with the raw openat
// system call and returns the file descriptor. Unlike os.Open it allocates
// nothing on success: no *os.File, no copy of the path, no cleanup, and no
// attempt to register the descriptor with the network poller (which /proc
// files refuse, one wasted system call each). The caller closes the
// descriptor with syscall.Close. Errors are *os.PathError with a bare
// syscall.Errno, so errors.Is(err, fs.ErrNotExist) works.
func OpenZ(pathz []byte, flags int) (int, error) {
	if len(pathz) == 0 || pathz[len(pathz)-1] != 0 {
		return -1, &os.PathError{Op: "open", Path: string(pathz), Err: syscall.EINVAL}
	}
	for {
		fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(atFDCWD),
			uintptr(unsafe.Pointer(&pathz[0])), uintptr(flags|syscall.O_CLOEXEC), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, &os.PathError{Op: "open", Path: string(pathz[:len(pathz)-1]), Err: errno}
		}
		return int(fd), nil
	}
}

// ReadZ reads the file at pathz (a path that ends in a NUL byte, see OpenZ)
// into the reader's buffer and returns its content, valid until the next
// read. limit > 0 stops after limit bytes (the rest of the file is not
// read); limit <= 0 reads the whole file, up to the reader's maximum size.
//
// A read that returns fewer bytes than asked for ends the file. That holds
// for regular files and for the single-record files of /proc/PID (stat,
// status, io, cmdline, ...), which the kernel generates whole and hands
// out in one read when the buffer is large enough; it saves the extra read
// that would return 0. It does NOT hold for multi-record seq files
// (net/dev, diskstats, ...), which give about a page per read: read those
// with ReadFullZ or Read.
// ReadZ allocates nothing unless the buffer has to grow or an error occurs.
func (r *Reader) ReadZ(pathz []byte, limit int) ([]byte, error) {
	fd, err := OpenZ(pathz, syscall.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	return r.ReadFD(fd, pathz, limit)
}

// ReadFD reads the open file fd from its start, with pread, as ReadZ reads
// a path; pathz names it in errors. A /proc/PID file kept open this way is
// generated afresh by every read, which saves the open and close (two
// thirds of the cost of a small /proc file) on each scan. Once the process
// has exited, reads of its files fail with ESRCH, even when its PID has
// been reused: the descriptor stays bound to the process it was opened for.
func (r *Reader) ReadFD(fd int, pathz []byte, limit int) ([]byte, error) {
	n := 0
	for {
		if limit > 0 && n >= limit {
			return r.buf[:limit], nil
		}
		if n == len(r.buf) && !r.grow(n) {
			return nil, &os.PathError{Op: "read", Path: pathString(pathz), Err: ErrTooLarge}
		}
		want := r.buf[n:]
		if limit > 0 && len(want) > limit-n {
			want = want[:limit-n]
		}
		m, err := syscall.Pread(fd, want, int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: pathString(pathz), Err: err}
		}
		n += m
		if m < len(want) {
			return r.buf[:n], nil
		}
	}
}

func pathString(pathz []byte) string {
	return string(bytes.TrimSuffix(pathz, []byte{0}))
}
