package procfile

import (
	"os"
	"syscall"
)

// ReadFullZ reads the whole file at pathz (a path that ends in a NUL byte,
// see OpenZ) into the reader's buffer and returns its content, valid until
// the next read. It reads until a read returns 0 bytes.
//
// Unlike ReadZ it does not take a short read for the end of the file: the
// seq_file files of /proc that print one record per device or line
// (net/dev, diskstats, interrupts, maps, ...) hand out at most about one
// page per read, whatever the size of the buffer, so a host with many
// devices would see its file cut after the first 4 KiB. The price is one
// more read system call, which returns 0.
// ReadFullZ allocates nothing unless the buffer has to grow or an error
// occurs.
func (r *Reader) ReadFullZ(pathz []byte) ([]byte, error) {
	fd, err := OpenZ(pathz, syscall.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	return r.readAll(fd, pathz)
}

// readAll reads the open file fd whole from its start, with pread, until a
// read returns 0 bytes (see ReadFullZ); pathz names it in errors.
func (r *Reader) readAll(fd int, pathz []byte) ([]byte, error) {
	n := 0
	for {
		if n == len(r.buf) && !r.grow(n) {
			return nil, &os.PathError{Op: "read", Path: pathString(pathz), Err: ErrTooLarge}
		}
		m, err := syscall.Pread(fd, r.buf[n:], int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: pathString(pathz), Err: err}
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}
