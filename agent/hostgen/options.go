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
// errors, the file kept open between reads (procfile.Kept), and the reader
// whose buffer it is read into. A generator that embeds one is an
// io.Closer, which the scheduler closes when it drops the generator.
type procFile struct {
	path string
	f    procfile.Kept
	r    *procfile.Reader
}

// newProcFile returns the file at filepath.Join(elem...), read into a
// buffer that starts at size bytes.
func newProcFile(size int, elem ...string) procFile {
	path := filepath.Join(elem...)
	return procFile{path: path, f: procfile.NewKept(path), r: procfile.NewReader(size)}
}

// read returns the file's whole content, valid until the next read.
func (f *procFile) read() ([]byte, error) {
	return f.r.ReadKept(&f.f)
}

// Close releases the file's kept descriptor.
func (f *procFile) Close() error {
	return f.f.Close()
}

// closeKept closes every file of fs, returning the first error.
func closeKept(fs []procfile.Kept) error {
	var first error
	for i := range fs {
		if err := fs[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
