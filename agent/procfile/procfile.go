// Package procfile reads small pseudo-files such as those under /proc and
// /sys into a reusable buffer and parses numbers and fields out of byte
// slices without allocating. The parsers of the generators are pure
// functions over what a Reader returns.
package procfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unsafe"
)

// maxSize bounds how much of one file is read, so that a hostile or broken
// file cannot make the agent grow without bound.
const maxSize = 64 << 20

// ErrTooLarge is returned for a file larger than the reader accepts.
var ErrTooLarge = errors.New("procfile: file too large")

// Reader reads whole files into a buffer it reuses. It is not safe for
// concurrent use; each generator owns one.
type Reader struct {
	buf []byte
}

// NewReader returns a reader whose buffer starts at size bytes.
func NewReader(size int) *Reader {
	if size < 512 {
		size = 512
	}
	return &Reader{buf: make([]byte, size)}
}

// grow doubles the buffer, keeping its first n bytes, or reports false
// when it holds maxSize already.
func (r *Reader) grow(n int) bool {
	if len(r.buf) >= maxSize {
		return false
	}
	nb := make([]byte, 2*len(r.buf))
	copy(nb, r.buf[:n])
	r.buf = nb
	return true
}

// Read returns the content of path. The returned slice is valid until the
// next call of Read. Pseudo-files report size 0, so the buffer grows by
// doubling until a read returns less than it asked for.
func (r *Reader) Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	for {
		if n == len(r.buf) && !r.grow(n) {
			return nil, fmt.Errorf("read %s: %w (over %d bytes)", path, ErrTooLarge, maxSize)
		}
		m, err := f.Read(r.buf[n:])
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			return r.buf[:n], nil
		}
		if err != nil {
			return r.buf[:n], fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// ParseUint parses a decimal unsigned integer.
func ParseUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not an unsigned integer", b)
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("%q overflows uint64", b)
		}
		n = n*10 + d
	}
	return n, nil
}

// ParseInt parses a decimal integer with an optional sign.
func ParseInt(b []byte) (int64, error) {
	neg := false
	d := b
	if len(d) > 0 && (d[0] == '-' || d[0] == '+') {
		neg = d[0] == '-'
		d = d[1:]
	}
	u, err := ParseUint(d)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", b)
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("%q overflows int64", b)
		}
		return -int64(u), nil
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("%q overflows int64", b)
	}
	return int64(u), nil
}

// ParseFloat parses a decimal floating point number.
func ParseFloat(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	// The string does not outlive the call: on error the message is built
	// from a copy.
	v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", string(b))
	}
	return v, nil
}

// Fields splits line at runs of spaces and tabs into dst[:0] and returns it.
// It allocates only when dst is too short.
func Fields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		dst = append(dst, line[i:j])
		i = j
	}
	return dst
}

// NextLine returns the first line of data (without its newline) and the rest.
// It lets parsers walk a file with a plain loop:
//
//	for len(data) > 0 { line, data = procfile.NextLine(data); ... }
func NextLine(data []byte) (line, rest []byte) {
	for i, c := range data {
		if c == '\n' {
			return data[:i], data[i+1:]
		}
	}
	return data, nil
}
