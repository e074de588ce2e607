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
	n := 0
	for {
		if n == len(r.buf) {
			if len(r.buf) >= maxSize {
				return nil, &os.PathError{Op: "read", Path: string(pathz[:len(pathz)-1]), Err: ErrTooLarge}
			}
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:n])
			r.buf = nb
		}
		m, err := syscall.Read(fd, r.buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: string(pathz[:len(pathz)-1]), Err: err}
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}
