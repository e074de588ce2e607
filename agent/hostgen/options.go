// Package hostgen holds the host generators: one file per /proc source, each
// emitting the series node_exporter v1.12.1 emits for the same input, with
// the same names, labels and values, so that existing dashboards work
// unchanged. Each file keeps reading (a Reader) apart from parsing (a pure
// function over bytes), and parsing allocates nothing in steady state.
package hostgen

import (
	"path/filepath"

	"github.com/procfleet/procfleet/agent/procfile"
)

// Options locate the filesystems the host generators read.
type Options struct {
	// ProcRoot is the procfs mount point. Default "/proc".
	ProcRoot string
	// SysRoot is the sysfs mount point. Default "/sys".
	SysRoot string
}

func (o Options) withDefaults() Options {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	return o
}

// procFile is the file a generator reads: its path, which names it in
// errors, the same path ending in NUL for procfile.Reader.ReadFullZ, and
// the reader whose buffer it is read into.
type procFile struct {
	path  string
	pathz []byte
	r     *procfile.Reader
}

// newProcFile returns the file at filepath.Join(elem...), read into a
// buffer that starts at size bytes.
func newProcFile(size int, elem ...string) procFile {
	path := filepath.Join(elem...)
	return procFile{path: path, pathz: zpath(path), r: procfile.NewReader(size)}
}

// read returns the file's whole content, valid until the next read.
func (f *procFile) read() ([]byte, error) {
	return f.r.ReadFullZ(f.pathz)
}
