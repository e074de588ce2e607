package procgen

import (
	"encoding/binary"
	"syscall"

	"github.com/procfleet/procfleet/agent/procfile"
)

// dirReader lists a directory in batches with getdents64 into a buffer it
// reuses, so that listing /proc allocates nothing per entry (os.File's
// Readdirnames makes a string of every name, 10,000 per scan).
type dirReader struct {
	fd  int
	buf []byte
	pos int // next record in buf[:end]
	end int
	off int64 // d_off of the last entry next returned: the offset of the entry after it
}

// open starts listing the directory at pathz (NUL-terminated).
func (d *dirReader) open(pathz []byte) error {
	fd, err := procfile.OpenZ(pathz, syscall.O_RDONLY|syscall.O_DIRECTORY)
	if err != nil {
		return err
	}
	d.fd, d.pos, d.end = fd, 0, 0
	return nil
}

// seek makes the listing go on from directory offset off, a d_off value.
func (d *dirReader) seek(off int64) error {
	if _, err := syscall.Seek(d.fd, off, 0); err != nil {
		return err
	}
	d.pos, d.end = 0, 0
	return nil
}

// next returns the next entry's name, valid until the next call of next, or
// nil at the end of the directory.
func (d *dirReader) next() ([]byte, error) {
	for {
		if d.pos >= d.end {
			n, err := syscall.ReadDirent(d.fd, d.buf)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return nil, err
			}
			if n <= 0 {
				return nil, nil
			}
			d.pos, d.end = 0, n
		}
		name, reclen := parseDirent(d.buf[d.pos:d.end])
		if reclen == 0 {
			d.pos = d.end // malformed record: drop the rest of the batch
			continue
		}
		d.off = int64(binary.NativeEndian.Uint64(d.buf[d.pos+8:]))
		d.pos += reclen
		if name != nil {
			return name, nil
		}
	}
}

// nextPID returns the next entry that names a process, with its PID, or a
// nil name at the end of the directory; other entries are skipped.
func (d *dirReader) nextPID() ([]byte, int32, error) {
	for {
		name, err := d.next()
		if name == nil || err != nil {
			return nil, 0, err
		}
		if pid, ok := parsePID(name); ok {
			return name, pid, nil
		}
	}
}

// appendPIDs appends to pids the PIDs listed from directory offset off up
// to hi.
func (d *dirReader) appendPIDs(pids []int32, off, hi int64) ([]int32, error) {
	if err := d.seek(off); err != nil {
		return pids, err
	}
	for {
		name, pid, err := d.nextPID()
		if name == nil || err != nil || int64(pid) > hi {
			return pids, err
		}
		pids = append(pids, pid)
	}
}

// close ends the listing.
func (d *dirReader) close() {
	if d.fd >= 0 {
		syscall.Close(d.fd)
	}
	d.fd = -1
}

// parseDirent parses one struct linux_dirent64 (u64 ino, s64 off, u16
// reclen, u8 type, NUL-terminated name) at the start of b and returns its
// name (nil for a deleted entry) and its length, 0 if malformed.
func parseDirent(b []byte) (name []byte, reclen int) {
	const nameOff = 19
	if len(b) < nameOff+1 {
		return nil, 0
	}
	reclen = int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen < nameOff+1 || reclen > len(b) {
		return nil, 0
	}
	if binary.NativeEndian.Uint64(b[0:8]) == 0 {
		return nil, reclen
	}
	name = b[nameOff:reclen]
	for i, c := range name {
		if c == 0 {
			return name[:i], reclen
		}
	}
	return name, reclen
}

// parsePID parses a directory name made only of digits as a PID, and
// reports false for any other name ("self", "net", "stat", ...).
func parsePID(name []byte) (int32, bool) {
	n, ok := parseDecimal(name)
	if !ok || len(name) > 10 || n <= 0 || n > 1<<31-1 {
		return 0, false
	}
	return int32(n), true
}
