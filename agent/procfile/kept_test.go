package procfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// A procfs file is kept open after its first read, and every later read
// through the descriptor starts again at offset 0 and reads the file whole:
// a multi-record seq file of many pages comes out as os.ReadFile gives it,
// twice, through the same descriptor.
func TestReadKeptProcfsWhole(t *testing.T) {
	const path = "/proc/kallsyms"
	want, err := os.ReadFile(path)
	if err != nil || len(want) < 64<<10 {
		t.Skipf("%s unreadable or small here (%d bytes, %v): this test needs a procfs with it", path, len(want), err)
	}
	k := NewKept(path)
	defer k.Close()
	r := NewReader(4 << 10)
	got, err := r.ReadKept(&k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("first ReadKept(%s): %d bytes, os.ReadFile %d, or not the same bytes", path, len(got), len(want))
	}
	if !k.Open() {
		t.Fatalf("%s is on a procfs but its descriptor was not kept", path)
	}
	fd := k.fd
	got, err = r.ReadKept(&k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("second ReadKept(%s), through the kept descriptor: %d bytes, want %d", path, len(got), len(want))
	}
	if k.fd != fd {
		t.Fatalf("the second read opened the file again (descriptor %d, was %d)", k.fd-1, fd-1)
	}
}

// A read through the kept descriptor gives the file's content at that
// read, not the first one's: this process's read count in /proc/self/io
// goes up between two reads of it.
func TestReadKeptFresh(t *testing.T) {
	k := NewKept("/proc/self/io")
	defer k.Close()
	r := NewReader(0)
	syscr := func() uint64 {
		t.Helper()
		data, err := r.ReadKept(&k)
		if err != nil {
			t.Skipf("no /proc/self/io here: %v", err)
		}
		for line, rest := NextLine(data); line != nil || len(rest) > 0; line, rest = NextLine(rest) {
			if v, ok := bytes.CutPrefix(line, []byte("syscr: ")); ok {
				n, err := ParseUint(v)
				if err != nil {
					t.Fatalf("syscr %q: %v", v, err)
				}
				return n
			}
		}
		t.Fatalf("no syscr line in %q", data)
		return 0
	}
	first := syscr()
	if !k.Open() {
		t.Fatal("/proc/self/io not kept")
	}
	second := syscr()
	if second <= first {
		t.Fatalf("syscr %d then %d: the second read did not see the first one's reads", first, second)
	}
}

// A file of another filesystem is opened for each read, so a file
// replaced by a rename (as a test's fixture is) is read anew.
func TestReadKeptOtherFilesystem(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := NewKept(p)
	r := NewReader(0)
	if got, err := r.ReadKept(&k); err != nil || string(got) != "one\n" {
		t.Fatalf("ReadKept = %q, %v", got, err)
	}
	if k.Open() {
		t.Fatalf("a file in %s (not a procfs) was kept open", dir)
	}
	tmp := filepath.Join(dir, "f.new")
	if err := os.WriteFile(tmp, []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadKept(&k); err != nil || string(got) != "two\n" {
		t.Fatalf("after a rename, ReadKept = %q, %v; want the new file", got, err)
	}
}

// A kept descriptor that fails (here replaced by one of a directory, which
// refuses reads) is closed and the file opened again by path within the
// same read: the read succeeds and a new descriptor is kept.
func TestReadKeptBadDescriptor(t *testing.T) {
	k := NewKept("/proc/self/stat")
	defer k.Close()
	r := NewReader(0)
	if _, err := r.ReadKept(&k); err != nil {
		t.Skipf("no /proc/self/stat here: %v", err)
	}
	if !k.Open() {
		t.Fatal("/proc/self/stat not kept")
	}
	dir, err := syscall.Open(t.TempDir(), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dir)
	if err := syscall.Dup3(dir, k.fd-1, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadKept(&k)
	if err != nil {
		t.Fatalf("ReadKept through a bad descriptor: %v; want the file read by path", err)
	}
	if !bytes.HasPrefix(got, []byte(strconv.Itoa(os.Getpid())+" (")) {
		t.Fatalf("ReadKept = %q; want this process's stat", got)
	}
	if !k.Open() {
		t.Fatal("no descriptor kept after the file was opened again")
	}
}

// A missing file is the same error as ReadFullZ's, and nothing is kept;
// Close releases a kept descriptor.
func TestReadKeptMissingAndClose(t *testing.T) {
	k := NewKept("/proc/self/no-such-file")
	r := NewReader(0)
	if _, err := r.ReadKept(&k); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadKept of a missing file: %v; want fs.ErrNotExist", err)
	}
	if k.Open() {
		t.Fatal("a descriptor kept for a missing file")
	}
	k = NewKept("/proc/self/stat")
	if _, err := r.ReadKept(&k); err != nil {
		t.Skipf("no /proc/self/stat here: %v", err)
	}
	fd := k.fd - 1
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if k.Open() {
		t.Fatal("Open after Close")
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); errno != syscall.EBADF {
		t.Fatalf("descriptor %d after Close: fcntl gave %v; want EBADF", fd, errno)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
